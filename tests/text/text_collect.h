/* SPDX-License-Identifier: MIT */
/*
 * Test helper for the text reader: a pt_event_fn that checks the invariants
 * every event must keep (func/func_id pairing, ids unique per name, strings
 * NUL-terminated) and renders each event as one canonical line, so tests
 * compare whole event sequences as text. Header-only, used by the unit test
 * and the real-trace counter.
 */
#ifndef PTESCOPE_TEST_TEXT_COLLECT_H
#define PTESCOPE_TEST_TEXT_COLLECT_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

struct collect {
	char *out; /* canonical lines, NULL if not rendering */
	size_t len, cap;
	bool render;
	uint64_t by_type[PT_EV_LOST + 1];
	/* func_id -> name seen first with it */
	const char **names;
	size_t nnames;
	int bad;	     /* invariant violations */
	uint64_t stop_after; /* return -ECANCELED after this many events, 0 = never */
	uint64_t seen;
};

static const char *const collect_type_names[] = {"?", "ENTRY", "EXIT", "LEAF", "FORK", "LOST"};

static inline void collect_printf(struct collect *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void collect_printf(struct collect *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(c->out ? c->out + c->len : NULL, c->out ? c->cap - c->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (c->out && c->len + (size_t)n < c->cap) {
			c->len += (size_t)n;
			return;
		}
		c->cap = (c->cap + (size_t)n + 1) * 2;
		c->out = realloc(c->out, c->cap);
		if (!c->out)
			abort();
	}
}

static inline void collect_time(struct collect *c, const char *key, uint64_t t)
{
	if (t == PT_NO_TIME)
		collect_printf(c, " %s=-", key);
	else
		collect_printf(c, " %s=%" PRIu64, key, t);
}

static inline int collect_fn(const struct pt_event *ev, void *ctx)
{
	struct collect *c = ctx;

	if (ev->type < PT_EV_ENTRY || ev->type > PT_EV_LOST) {
		c->bad++;
		return 0;
	}
	c->by_type[ev->type]++;
	if ((ev->func == NULL) != (ev->func_id == 0))
		c->bad++;
	if (ev->func) {
		if (ev->func_id > 100000000) {
			c->bad++;
		} else {
			if (ev->func_id > c->nnames) {
				size_t n = ev->func_id;

				c->names = realloc(c->names, n * sizeof(*c->names));
				if (!c->names)
					abort();
				memset(c->names + c->nnames, 0,
				       (n - c->nnames) * sizeof(*c->names));
				c->nnames = n;
			}
			if (!c->names[ev->func_id - 1])
				c->names[ev->func_id - 1] = ev->func;
			else if (c->names[ev->func_id - 1] != ev->func ||
				 strcmp(c->names[ev->func_id - 1], ev->func))
				c->bad++;
			if (strlen(ev->func) == 0)
				c->bad++;
		}
	}
	if (ev->comm)
		(void)strlen(ev->comm);
	if (ev->child_comm)
		(void)strlen(ev->child_comm);
	if (ev->type == PT_EV_ENTRY && ev->dur_ns != PT_NO_TIME)
		c->bad++;
	if (c->render) {
		collect_printf(c, "%s cpu=%d pid=%d comm=%s", collect_type_names[ev->type], ev->cpu,
			       ev->pid, ev->comm ? ev->comm : "-");
		if (ev->type <= PT_EV_LEAF)
			collect_printf(c, " depth=%d", ev->depth);
		collect_time(c, "ts", ev->ts_ns);
		if (ev->type == PT_EV_EXIT || ev->type == PT_EV_LEAF)
			collect_time(c, "dur", ev->dur_ns);
		if (ev->call_ns != PT_NO_TIME) /* raw exits only */
			collect_time(c, "call", ev->call_ns);
		if (ev->rec_ts_ns != PT_NO_TIME)
			collect_time(c, "rec", ev->rec_ts_ns);
		if (ev->overrun >= 0)
			collect_printf(c, " overrun=%" PRId64, ev->overrun);
		if (ev->type <= PT_EV_LEAF)
			collect_printf(c, " func=%s", ev->func ? ev->func : "-");
		if (ev->type == PT_EV_FORK)
			collect_printf(c, " child=%d/%s", ev->child_pid,
				       ev->child_comm ? ev->child_comm : "-");
		if (ev->type == PT_EV_LOST)
			collect_printf(c, " lost=%" PRIu64, ev->lost);
		if (ev->in_irq)
			collect_printf(c, " irq");
		collect_printf(c, "\n");
	}
	c->seen++;
	if (c->stop_after && c->seen >= c->stop_after)
		return -ECANCELED;
	return 0;
}

/* Forgets the names: func pointers die with the read that produced them. */
static inline void collect_reset(struct collect *c)
{
	free(c->out);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

#endif
