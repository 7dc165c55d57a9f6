/* SPDX-License-Identifier: MIT */
/*
 * The doctor's aggregation (doctor.h): forks sorted by process, each
 * process's complete forks reduced to medians, sums and the split of their
 * time, then the rule table (doctor_rules.c) run over the processes whose
 * slowest fork reaches the threshold.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "doctor.h"
#include "util.h"

const char *pt_verdict_name(enum pt_verdict v)
{
	static const char *const names[] = {"fires", "quiet", "cannot_judge"};

	return names[v];
}

const char *pt_component_name(enum pt_component c)
{
	static const char *const names[] = {"page_table_copy", "scheduled_out", "vma_copy",
					    "rest_of_copy_process", "rest_of_kernel_clone"};

	return names[c];
}

struct ctx {
	const struct pt_fork *forks;
	const int64_t *ids;
};

static int cmp_proc(const void *a, const void *b, void *arg)
{
	const struct ctx *c = arg;
	const struct pt_fork *x = &c->forks[*(const size_t *)a], *y = &c->forks[*(const size_t *)b];
	int r = strncmp(x->parent_comm, y->parent_comm, sizeof(x->parent_comm));

	if (r)
		return r;
	if (x->parent_pid != y->parent_pid)
		return x->parent_pid < y->parent_pid ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median of @n values (lower middle), NAN when none. Sorts @v. */
static double median_d(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(n - 1) / 2];
}

static int64_t median_i(int64_t *v, size_t n)
{
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), cmp_i64);
	return v[(n - 1) / 2];
}

/* Scratch arrays for one process's complete forks. */
enum { S_COPY, S_NSPTE, S_MSGIB, S_GBS, S_TOTAL, NR_SD };
enum { S_PTES, S_TABLES, S_VMAS, S_RSS, S_PTEB, S_MAPS, S_HUGE, NR_SI };

struct scratch {
	double *d[NR_SD];
	int64_t *i[NR_SI];
	size_t nd[NR_SD], ni[NR_SI];
};

static void put_d(struct scratch *s, int k, double v)
{
	if (!isnan(v))
		s->d[k][s->nd[k]++] = v;
}

static void put_i(struct scratch *s, int k, int64_t v)
{
	if (v >= 0)
		s->i[k][s->ni[k]++] = v;
}

static int64_t mem_or(const struct pt_fork *f, enum pt_mem_field k)
{
	return pt_mem_has(&f->mem, k) ? f->mem.v[k] : -1;
}

/* PTE tables copied: one per pass that started a new PMD (passes less lock breaks). */
static int64_t pte_tables(const struct pt_fork *f)
{
	if (f->pte_passes == PT_NULL || f->lock_breaks == PT_NULL || f->pte_passes < f->lock_breaks)
		return -1;
	return f->pte_passes - f->lock_breaks;
}

/* Adds where @f's time went to @sum (and its outer time to *den). */
static void add_components(const struct pt_fork *f, double sum[PT_COMP_COUNT], bool seen[],
			   double *den)
{
	uint64_t kc = f->kernel_clone_ns, cp = f->copy_process_ns, dm = f->dup_mmap_ns;
	uint64_t cpr = f->copy_page_range_ns, off = f->copy_offcpu_ns;
	uint64_t outer = pt_fork_outer_ns(f);

	if (outer == PT_NO_TIME)
		return;
	*den += (double)outer;
#define PART(c, hi, lo)                                                                            \
	do {                                                                                       \
		if ((hi) != PT_NO_TIME && (lo) != PT_NO_TIME && (hi) >= (lo)) {                    \
			sum[c] += (double)((hi) - (lo));                                           \
			seen[c] = true;                                                            \
		}                                                                                  \
	} while (0)
	PART(PT_COMP_KERNEL_CLONE, kc, cp);
	PART(PT_COMP_COPY_PROCESS, cp, dm);
	PART(PT_COMP_VMAS, dm, cpr);
#undef PART
	if (cpr != PT_NO_TIME) {
		uint64_t o = off != PT_NO_TIME && off <= cpr ? off : 0;

		sum[PT_COMP_PTE_COPY] += (double)(cpr - o);
		seen[PT_COMP_PTE_COPY] = true;
		if (off != PT_NO_TIME) {
			sum[PT_COMP_OFFCPU] += (double)o;
			seen[PT_COMP_OFFCPU] = true;
		}
	}
}

static void one_fork(struct pt_doctor_proc *p, struct scratch *s, const struct pt_fork *f,
		     double sum[], bool seen[], double *den, double offcpu[2])
{
	struct pt_fork_cost c;

	pt_fork_cost(f, &c);
	put_d(s, S_TOTAL, (double)pt_fork_total_ns(f));
	put_d(s, S_COPY, c.copy_share);
	put_d(s, S_NSPTE, c.ns_per_pte);
	put_d(s, S_MSGIB, c.ms_per_gib_rss);
	put_d(s, S_GBS, c.gb_per_s);
	put_i(s, S_PTES, f->ptes == PT_NULL ? -1 : f->ptes);
	put_i(s, S_TABLES, pte_tables(f));
	put_i(s, S_VMAS, f->vmas == PT_NULL ? -1 : f->vmas);
	put_i(s, S_RSS, pt_mem_rss_bytes(&f->mem));
	put_i(s, S_PTEB, mem_or(f, PT_MEM_PTE));
	put_i(s, S_MAPS, mem_or(f, PT_MEM_MAP_COUNT));
	put_i(s, S_HUGE, mem_or(f, PT_MEM_ANON_HUGE));
	add_components(f, sum, seen, den);
	if (f->copy_offcpu_ns != PT_NO_TIME && pt_fork_total_ns(f) != PT_NO_TIME) {
		offcpu[0] += (double)f->copy_offcpu_ns;
		offcpu[1] += (double)pt_fork_total_ns(f);
	}
	if (f->lock_breaks != PT_NULL) {
		p->lock_breaks = (p->lock_breaks < 0 ? 0 : p->lock_breaks) + f->lock_breaks;
		p->forks_with_breaks += f->lock_breaks > 0;
	}
	if (pt_mem_has(&f->mem, PT_MEM_CHILD_EXEC)) {
		p->exec_known++;
		p->exec_yes += f->mem.v[PT_MEM_CHILD_EXEC] != 0;
	}
	p->no_mm_forks += f->vmas == 0;
	for (size_t v = 0; v < f->nr_vma; v++)
		p->huge_seen |= f->vma[v].huge;
}

/* Fills @p from the forks idx[0..n) (one process). */
static void aggregate(struct pt_doctor_proc *p, const struct ctx *c, const size_t *idx, size_t n,
		      struct scratch *s)
{
	double sum[PT_COMP_COUNT] = {0}, den = 0, offcpu[2] = {0, 0};
	bool seen[PT_COMP_COUNT] = {0};

	memset(p, 0, sizeof(*p));
	memset(s->nd, 0, sizeof(s->nd));
	memset(s->ni, 0, sizeof(s->ni));
	memcpy(p->comm, c->forks[idx[0]].parent_comm, sizeof(p->comm));
	p->pid = c->forks[idx[0]].parent_pid;
	p->lock_breaks = -1;
	p->forks = n;
	for (size_t i = 0; i < n; i++) {
		const struct pt_fork *f = &c->forks[idx[i]];

		if (!f->complete || pt_fork_total_ns(f) == PT_NO_TIME)
			continue;
		p->complete++;
		one_fork(p, s, f, sum, seen, &den, offcpu);
	}
	p->dominant = -1;
	for (int k = 0; k < PT_COMP_COUNT; k++) {
		p->share[k] = seen[k] && den > 0 ? sum[k] / den : NAN;
		if (!isnan(p->share[k]) && (p->dominant < 0 || p->share[k] > p->share[p->dominant]))
			p->dominant = k;
	}
	p->offcpu_share = offcpu[1] > 0 ? offcpu[0] / offcpu[1] : NAN;
	p->copy_share = median_d(s->d[S_COPY], s->nd[S_COPY]);
	p->ns_per_pte = median_d(s->d[S_NSPTE], s->nd[S_NSPTE]);
	p->ms_per_gib_rss = median_d(s->d[S_MSGIB], s->nd[S_MSGIB]);
	p->gb_per_s = median_d(s->d[S_GBS], s->nd[S_GBS]);
	p->ptes = median_i(s->i[S_PTES], s->ni[S_PTES]);
	p->pte_tables = median_i(s->i[S_TABLES], s->ni[S_TABLES]);
	p->vmas = median_i(s->i[S_VMAS], s->ni[S_VMAS]);
	p->rss_bytes = median_i(s->i[S_RSS], s->ni[S_RSS]);
	p->pte_bytes = median_i(s->i[S_PTEB], s->ni[S_PTEB]);
	p->map_count = median_i(s->i[S_MAPS], s->ni[S_MAPS]);
	p->anon_huge_bytes = median_i(s->i[S_HUGE], s->ni[S_HUGE]);
	if (s->nd[S_TOTAL]) {
		double med = median_d(s->d[S_TOTAL], s->nd[S_TOTAL]);

		p->p50_ns = (uint64_t)med;
		p->max_ns = (uint64_t)s->d[S_TOTAL][s->nd[S_TOTAL] - 1];
	}
}

/* The ids of the process's slowest complete forks, slowest first. */
static void slowest_ids(struct pt_doctor_proc *p, const struct ctx *c, const size_t *idx, size_t n)
{
	uint64_t t[PT_DOCTOR_SLOWEST];

	p->nr_slowest = 0;
	for (size_t i = 0; i < n; i++) {
		const struct pt_fork *f = &c->forks[idx[i]];
		uint64_t ft = pt_fork_total_ns(f);
		size_t j;

		if (!f->complete || ft == PT_NO_TIME)
			continue;
		j = p->nr_slowest < PT_DOCTOR_SLOWEST ? p->nr_slowest++ : PT_DOCTOR_SLOWEST;
		if (j == PT_DOCTOR_SLOWEST) {
			if (ft <= t[PT_DOCTOR_SLOWEST - 1])
				continue;
			j = PT_DOCTOR_SLOWEST - 1;
		}
		while (j > 0 && t[j - 1] < ft) {
			t[j] = t[j - 1];
			p->slowest[j] = p->slowest[j - 1];
			j--;
		}
		t[j] = ft;
		p->slowest[j] = c->ids ? c->ids[idx[i]] : (int64_t)idx[i] + 1;
	}
}

/* A fork's cost per GiB for a baseline of @kind, NAN when it does not carry it. */
static double gib_cost(const struct pt_fork *f, int kind)
{
	struct pt_fork_cost c;

	if (!f->complete || pt_fork_total_ns(f) == PT_NO_TIME)
		return NAN;
	pt_fork_cost(f, &c);
	if (kind == PT_BASELINE_RSS)
		return pt_mem_rss_bytes(&f->mem) >= (64LL << 20) ? c.ms_per_gib_rss : NAN;
	if (kind == PT_BASELINE_PTES)
		return f->ptes != PT_NULL && f->ptes >= 1024
			   ? pt_ms_per_gib_of_ns_per_pte(c.ns_per_pte)
			   : NAN;
	return NAN;
}

struct baseline {
	int kind;
	double median;
	size_t forks;
};

/* The baseline of the comm whose forks are idx[0..n) (@tmp: n doubles). */
static void comm_baseline(const struct ctx *c, const size_t *idx, size_t n, double *tmp,
			  struct baseline *b)
{
	b->kind = PT_BASELINE_NONE;
	b->median = NAN;
	b->forks = 0;
	for (int kind = PT_BASELINE_RSS; kind <= PT_BASELINE_PTES; kind++) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++) {
			double v = gib_cost(&c->forks[idx[i]], kind);

			if (!isnan(v))
				tmp[m++] = v;
		}
		if (m >= PT_BASELINE_MIN) {
			b->kind = kind;
			b->median = median_d(tmp, m);
			b->forks = m;
			return;
		}
	}
}

/* The forks of one process over PT_REGRESSION_RATIO times the comm's baseline. */
static void regressions(struct pt_doctor_proc *p, const struct ctx *c, const size_t *idx, size_t n,
			const struct baseline *b)
{
	double worst[PT_DOCTOR_SLOWEST];

	p->baseline_kind = b->kind;
	p->baseline_ms_per_gib = b->median;
	p->baseline_forks = b->forks;
	p->worst_ms_per_gib = NAN;
	if (b->kind == PT_BASELINE_NONE)
		return;
	for (size_t i = 0; i < n; i++) {
		double v = gib_cost(&c->forks[idx[i]], b->kind);
		size_t j;

		if (isnan(v))
			continue;
		if (isnan(p->worst_ms_per_gib) || v > p->worst_ms_per_gib)
			p->worst_ms_per_gib = v;
		if (v <= PT_REGRESSION_RATIO * b->median)
			continue;
		p->regressions++;
		j = p->nr_regression_ids < PT_DOCTOR_SLOWEST ? p->nr_regression_ids++
							     : PT_DOCTOR_SLOWEST;
		if (j == PT_DOCTOR_SLOWEST) {
			if (v <= worst[PT_DOCTOR_SLOWEST - 1])
				continue;
			j = PT_DOCTOR_SLOWEST - 1;
		}
		for (; j > 0 && worst[j - 1] < v; j--) {
			worst[j] = worst[j - 1];
			p->regression_ids[j] = p->regression_ids[j - 1];
		}
		worst[j] = v;
		p->regression_ids[j] = c->ids ? c->ids[idx[i]] : (int64_t)idx[i] + 1;
	}
}

static int scratch_new(struct scratch *s, size_t n)
{
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < NR_SD; k++)
		if (!(s->d[k] = malloc((n ? n : 1) * sizeof(double))))
			return -ENOMEM;
	for (int k = 0; k < NR_SI; k++)
		if (!(s->i[k] = malloc((n ? n : 1) * sizeof(int64_t))))
			return -ENOMEM;
	return 0;
}

static void scratch_free(struct scratch *s)
{
	for (int k = 0; k < NR_SD; k++)
		free(s->d[k]);
	for (int k = 0; k < NR_SI; k++)
		free(s->i[k]);
}

static int cmp_slowest(const void *a, const void *b)
{
	const struct pt_doctor_proc *x = a, *y = b;

	return x->max_ns < y->max_ns ? 1 : x->max_ns > y->max_ns ? -1 : 0;
}

static void judge(struct pt_doctor_proc *p)
{
	for (size_t r = 0; r < pt_doctor_nr_rules; r++) {
		p->evidence[r][0] = 0;
		p->verdict[r] = pt_doctor_rules[r].judge(&pt_doctor_rules[r], p, p->evidence[r],
							 PT_DOCTOR_EVIDENCE);
	}
}

/* Groups, aggregates and judges; @idx is sorted by process. */
static int examine(const struct ctx *c, const size_t *idx, size_t n, struct scratch *s,
		   struct pt_doctor_report *out)
{
	struct pt_doctor_proc p;
	struct baseline b = {PT_BASELINE_NONE, NAN, 0};
	size_t cap = 0, comm_end = 0;

	for (size_t i = 0, j; i < n; i = j) {
		const struct pt_fork *f = &c->forks[idx[i]];

		if (i >= comm_end) { /* a new comm: its baseline over all its processes */
			for (comm_end = i + 1; comm_end < n; comm_end++)
				if (strncmp(c->forks[idx[comm_end]].parent_comm, f->parent_comm,
					    sizeof(f->parent_comm)))
					break;
			comm_baseline(c, idx + i, comm_end - i, s->d[S_TOTAL], &b);
		}
		for (j = i + 1; j < n; j++) {
			const struct pt_fork *g = &c->forks[idx[j]];

			if (g->parent_pid != f->parent_pid ||
			    strncmp(g->parent_comm, f->parent_comm, sizeof(f->parent_comm)))
				break;
		}
		out->processes++;
		aggregate(&p, c, idx + i, j - i, s);
		out->complete += p.complete;
		if (!p.complete || p.max_ns < out->slow_ns)
			continue;
		slowest_ids(&p, c, idx + i, j - i);
		regressions(&p, c, idx + i, j - i, &b);
		judge(&p);
		if (pt_grow_array((void **)&out->procs, &cap, out->nr_procs + 1,
				  sizeof(*out->procs)))
			return -ENOMEM;
		out->procs[out->nr_procs++] = p;
	}
	return 0;
}

int pt_doctor_run(const struct pt_fork *forks, const int64_t *ids, size_t n,
		  const struct pt_doctor_opts *o, struct pt_doctor_report *out)
{
	struct ctx c = {forks, ids};
	size_t *idx = malloc((n ? n : 1) * sizeof(*idx)),
	       max = o && o->max_procs ? o->max_procs : 20;
	unsigned kinds = o && o->kinds ? o->kinds : PT_KINDS_FORK;
	struct scratch s;
	int r;

	memset(out, 0, sizeof(*out));
	out->slow_ns = o && o->slow_ns ? o->slow_ns : 1000000;
	out->ids_are_store_ids = ids != NULL;
	r = scratch_new(&s, n);
	if (!idx || r) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (kinds & (1u << forks[i].kind))
			idx[out->forks++] = i;
	qsort_r(idx, out->forks, sizeof(*idx), cmp_proc, &c);
	r = examine(&c, idx, out->forks, &s, out);
	if (out->nr_procs)
		qsort(out->procs, out->nr_procs, sizeof(*out->procs), cmp_slowest);
	if (out->nr_procs > max)
		out->nr_procs = max;
out:
	scratch_free(&s);
	free(idx);
	if (r)
		pt_doctor_release(out);
	return r;
}

void pt_doctor_release(struct pt_doctor_report *r)
{
	if (!r)
		return;
	free(r->procs);
	r->procs = NULL;
	r->nr_procs = 0;
}
