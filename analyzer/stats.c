/* SPDX-License-Identifier: MIT */
/*
 * Statistics over fork records (stats.h). Percentiles are exact (the values
 * are sorted); histograms are log-scale with 4 buckets per power of two, so a
 * bucket's bounds are within 19% of each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "stats.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t pt_quantile_sorted(const uint64_t *values, size_t n, double q)
{
	size_t rank;

	if (!n)
		return 0;
	/* nearest rank: ceil(q * n), computed without floating error at exact ranks */
	rank = (size_t)(q * (double)n);
	if ((double)rank < q * (double)n)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return values[rank - 1];
}

void pt_dist_compute(uint64_t *values, size_t n, struct pt_dist *d)
{
	long double sum = 0;

	memset(d, 0, sizeof(*d));
	d->count = n;
	if (!n)
		return;
	qsort(values, n, sizeof(*values), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += values[i];
	d->min = values[0];
	d->max = values[n - 1];
	d->p50 = pt_quantile_sorted(values, n, 0.50);
	d->p90 = pt_quantile_sorted(values, n, 0.90);
	d->p99 = pt_quantile_sorted(values, n, 0.99);
	d->p999 = pt_quantile_sorted(values, n, 0.999);
	d->mean = (double)(sum / n);
}

/* Bucket 0 holds 0; then, for each power of two 2^lg, four buckets split
 * [2^lg, 2^(lg+1)) by the two bits below the leading one. */
size_t pt_hist_index(uint64_t v)
{
	unsigned lg;
	size_t sub;

	if (v == 0)
		return 0;
	lg = 63u - (unsigned)__builtin_clzll(v);
	if (lg >= 40)
		return PT_HIST_BUCKETS - 1;
	sub = lg >= 2 ? (size_t)(v >> (lg - 2)) & 3 : (size_t)(v - (1ull << lg)) << (2 - lg);
	return 1 + (size_t)lg * PT_HIST_SUB + sub;
}

uint64_t pt_hist_upper(size_t index)
{
	size_t lg, sub;

	if (index == 0)
		return 0;
	if (index >= PT_HIST_BUCKETS - 1)
		return UINT64_MAX;
	lg = (index - 1) / PT_HIST_SUB;
	sub = (index - 1) % PT_HIST_SUB;
	if (lg < 2)
		return (1ull << lg) + (sub >> (2 - lg));
	return (1ull << lg) + ((uint64_t)(sub + 1) << (lg - 2)) - 1;
}

void pt_hist_add(struct pt_hist *h, uint64_t v)
{
	h->count[pt_hist_index(v)]++;
	h->total++;
}

static const char *const phase_names[PT_PHASE_COUNT] = {"kernel_clone", "copy_process",
							 "dup_mmap", "copy_page_range"};

const char *pt_phase_name(enum pt_phase p)
{
	return p < PT_PHASE_COUNT ? phase_names[p] : "?";
}

uint64_t pt_fork_phase_ns(const struct pt_fork *f, enum pt_phase p)
{
	switch (p) {
	case PT_PHASE_KERNEL_CLONE:
		return f->kernel_clone_ns;
	case PT_PHASE_COPY_PROCESS:
		return f->copy_process_ns;
	case PT_PHASE_DUP_MMAP:
		return f->dup_mmap_ns;
	case PT_PHASE_COPY_PAGE_RANGE:
		return f->copy_page_range_ns;
	default:
		return PT_NO_TIME;
	}
}

static int cmp_comm_forks(const void *a, const void *b)
{
	const struct pt_comm_stats *x = a, *y = b;

	if (x->forks != y->forks)
		return x->forks < y->forks ? 1 : -1;
	return strcmp(x->comm, y->comm);
}

static int cmp_fork_comm(const void *a, const void *b)
{
	const struct pt_fork *const *x = a, *const *y = b;

	return strcmp((*x)->parent_comm, (*y)->parent_comm);
}

static int summarize_comms(const struct pt_fork *forks, size_t n, struct pt_summary *s,
			   uint64_t *scratch)
{
	const struct pt_fork **order = malloc((n ? n : 1) * sizeof(*order));
	size_t i = 0, n_order;

	if (!order)
		return -ENOMEM;
	n_order = 0;
	for (size_t k = 0; k < n; k++)
		if (s->kinds_mask & (1u << forks[k].kind))
			order[n_order++] = &forks[k];
	n = n_order;
	qsort(order, n, sizeof(*order), cmp_fork_comm);
	s->by_comm = calloc(n ? n : 1, sizeof(*s->by_comm));
	if (!s->by_comm) {
		free(order);
		return -ENOMEM;
	}
	while (i < n) {
		struct pt_comm_stats *c = &s->by_comm[s->nr_comms++];
		size_t j = i, nv = 0;

		snprintf(c->comm, sizeof(c->comm), "%s", order[i]->parent_comm);
		while (j < n && !strcmp(order[j]->parent_comm, c->comm)) {
			uint64_t v = pt_fork_total_ns(order[j]);

			c->complete += order[j]->complete;
			if (order[j]->complete && v != PT_NO_TIME)
				scratch[nv++] = v;
			j++;
		}
		c->forks = j - i;
		pt_dist_compute(scratch, nv, &c->total);
		i = j;
	}
	free(order);
	qsort(s->by_comm, s->nr_comms, sizeof(*s->by_comm), cmp_comm_forks);
	return 0;
}

static bool in_kinds(const struct pt_summary *s, const struct pt_fork *f)
{
	return s->kinds_mask & (1u << f->kind);
}

int pt_summary_compute(const struct pt_fork *forks, size_t n, struct pt_summary *s)
{
	return pt_summary_compute_kinds(forks, n, PT_KINDS_FORK, s);
}

int pt_summary_compute_kinds(const struct pt_fork *forks, size_t n, unsigned kinds_mask,
			     struct pt_summary *s)
{
	uint64_t *vals = malloc((n ? n : 1) * sizeof(*vals));
	uint64_t pte_ns = 0, pte_count = 0;
	size_t nv;
	int ret;

	memset(s, 0, sizeof(*s));
	if (!vals)
		return -ENOMEM;
	s->kinds_mask = kinds_mask;
	for (size_t i = 0; i < n; i++) {
		const struct pt_fork *f = &forks[i];

		s->kinds[f->kind < PT_KIND_COUNT ? f->kind : PT_KIND_UNKNOWN]++;
		if (!in_kinds(s, f))
			continue;
		s->forks++;
		for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
			if (f->flags & (1u << b))
				s->flagged[b]++;
		if (!f->complete)
			continue;
		s->complete++;
		if (f->vmas != PT_NULL)
			s->vmas += (uint64_t)f->vmas;
		if (f->pte_passes != PT_NULL)
			s->passes += (uint64_t)f->pte_passes;
		if (f->lock_breaks != PT_NULL) {
			s->lock_breaks += (uint64_t)f->lock_breaks;
			s->forks_with_breaks += f->lock_breaks > 0;
		}
		if (f->ptes != PT_NULL)
			s->ptes += (uint64_t)f->ptes;
		if (pt_counts_toward_cost(f->complete, f->copy_page_range_ns, f->ptes)) {
			pte_ns += f->copy_page_range_ns;
			pte_count += (uint64_t)f->ptes;
		}
	}
	for (int p = 0; p < PT_PHASE_COUNT; p++) {
		nv = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t v = pt_fork_phase_ns(&forks[i], (enum pt_phase)p);

			if (forks[i].complete && v != PT_NO_TIME && in_kinds(s, &forks[i])) {
				vals[nv++] = v;
				pt_hist_add(&s->hist[p], v);
			}
		}
		pt_dist_compute(vals, nv, &s->phase[p]);
	}
	nv = 0;
	for (size_t i = 0; i < n; i++)
		if (forks[i].complete && forks[i].max_lock_hold_ns != PT_NO_TIME &&
		    in_kinds(s, &forks[i]))
			vals[nv++] = forks[i].max_lock_hold_ns;
	pt_dist_compute(vals, nv, &s->lock_hold);
	nv = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = pt_fork_total_ns(&forks[i]);

		if (forks[i].complete && v != PT_NO_TIME && in_kinds(s, &forks[i]))
			vals[nv++] = v;
	}
	pt_dist_compute(vals, nv, &s->total);
	if (pte_count) {
		s->ns_per_pte = (double)pte_ns / (double)pte_count;
		s->ms_per_gib = pt_ms_per_gib_of_ns_per_pte(s->ns_per_pte);
	}
	ret = summarize_comms(forks, n, s, vals);
	free(vals);
	return ret;
}

void pt_summary_release(struct pt_summary *s)
{
	if (!s)
		return;
	free(s->by_comm);
	s->by_comm = NULL;
	s->nr_comms = 0;
}
