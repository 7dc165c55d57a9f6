/* SPDX-License-Identifier: MIT */
/*
 * Per-CPU event queues (ring arrays that double up to a bound) and the
 * time-ordered hand-over of live capture (merge.h has the rule and the
 * sizing).
 */
#include "merge.h"

#include <errno.h>
#include <stdlib.h>

struct queue {
	struct pd_qev *q;
	size_t cap, head, len;
	uint64_t last_ts;
};

struct pd_merge {
	struct queue *qs;
	int nr;
	size_t max;
};

int pd_merge_new(int nr, size_t max, struct pd_merge **out)
{
	struct pd_merge *m = calloc(1, sizeof(*m));

	if (!m || !(m->qs = calloc((size_t)(nr > 0 ? nr : 1), sizeof(*m->qs)))) {
		free(m);
		return -ENOMEM;
	}
	m->nr = nr;
	m->max = max;
	*out = m;
	return 0;
}

void pd_merge_free(struct pd_merge *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nr; i++)
		free(m->qs[i].q);
	free(m->qs);
	free(m);
}

static int grow(struct queue *b, size_t max)
{
	size_t ncap = b->cap ? b->cap * 2 : 1024;
	struct pd_qev *nq;

	if (ncap > max)
		ncap = max;
	if (ncap <= b->cap || !(nq = malloc(ncap * sizeof(*nq))))
		return -ENOMEM;
	for (size_t i = 0; i < b->len; i++)
		nq[i] = b->q[(b->head + i) % b->cap];
	free(b->q);
	b->q = nq;
	b->cap = ncap;
	b->head = 0;
	return 0;
}

struct pd_qev *pd_merge_next(struct pd_merge *m, int q)
{
	struct queue *b = &m->qs[q];

	if (b->len == b->cap && grow(b, m->max))
		return NULL;
	return &b->q[(b->head + b->len) % b->cap];
}

struct pd_qev *pd_merge_push(struct pd_merge *m, int q, uint64_t ts)
{
	struct queue *b = &m->qs[q];
	struct pd_qev *e = pd_merge_next(m, q);

	if (!e)
		return NULL;
	b->len++;
	e->ts = ts;
	if (ts > b->last_ts)
		b->last_ts = ts;
	return e;
}

size_t pd_merge_len(const struct pd_merge *m, int q)
{
	return m->qs[q].len;
}

uint64_t pd_merge_last_ts(const struct pd_merge *m, int q)
{
	return m->qs[q].last_ts;
}

uint64_t pd_merge_safe_upto(const struct pd_merge *m, const bool *drained, uint64_t now_ns,
			    uint64_t slack_ns, bool final)
{
	uint64_t mark = now_ns > slack_ns ? now_ns - slack_ns : 0;

	if (final)
		return UINT64_MAX;
	for (int i = 0; i < m->nr; i++)
		if (!drained[i] && m->qs[i].last_ts < mark)
			mark = m->qs[i].last_ts;
	return mark;
}

int pd_merge_out(struct pd_merge *m, uint64_t upto,
		 int (*fn)(const struct pd_qev *e, int q, void *ctx), void *ctx)
{
	for (;;) {
		struct queue *best = NULL;
		int bi = -1, ret;

		for (int i = 0; i < m->nr; i++) {
			struct queue *b = &m->qs[i];

			if (b->len && b->q[b->head].ts <= upto &&
			    (!best || b->q[b->head].ts < best->q[best->head].ts)) {
				best = b;
				bi = i;
			}
		}
		if (!best)
			return 0;
		ret = fn(&best->q[best->head], bi, ctx);
		best->head = (best->head + 1) % best->cap;
		best->len--;
		if (ret)
			return ret;
	}
}
