/* SPDX-License-Identifier: MIT */
/*
 * Syscall-mode fork assembly (see sysfork.h): an open-addressing table of
 * the tasks inside a clone-family syscall, keyed by pid, with linear probing
 * and backward-shift deletion, so entries come and go without tombstones.
 */
#include "sysfork.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_SLOTS 65536u /* power of two; at most 3/4 used */

struct slot {
	int pid; /* 0: empty */
	bool has_fork, lost;
	uint64_t enter_ns, fork_ns;
	int child_pid;
	char comm[32], child_comm[32];
	/* the task_newtask of this syscall (nt_child 0: none yet) */
	int nt_child;
	uint64_t nt_flags;
};

/* A task_newtask outside any tracked syscall, for the fork event after it. */
struct newtask {
	int pid, child;
	uint64_t flags;
};

struct pd_sysfork {
	pt_fork_fn fn;
	void *ctx;
	uint64_t start_ns, grace_ns;
	unsigned used;
	struct slot *t;
	struct newtask loose;
};

int pd_sysfork_new(pt_fork_fn fn, void *ctx, uint64_t start_ts_ns, uint64_t start_grace_ns,
		   struct pd_sysfork **out)
{
	struct pd_sysfork *s = calloc(1, sizeof(*s));

	if (!s || !(s->t = calloc(TABLE_SLOTS, sizeof(*s->t)))) {
		free(s);
		return -ENOMEM;
	}
	s->fn = fn;
	s->ctx = ctx;
	s->start_ns = start_ts_ns;
	s->grace_ns = start_grace_ns;
	*out = s;
	return 0;
}

void pd_sysfork_free(struct pd_sysfork *s)
{
	if (!s)
		return;
	free(s->t);
	free(s);
}

unsigned pd_sysfork_inflight(const struct pd_sysfork *s)
{
	return s->used;
}

static unsigned hash(int pid)
{
	return ((unsigned)pid * 2654435761u) & (TABLE_SLOTS - 1);
}

static struct slot *find(struct pd_sysfork *s, int pid)
{
	for (unsigned i = hash(pid);; i = (i + 1) & (TABLE_SLOTS - 1)) {
		if (s->t[i].pid == pid)
			return &s->t[i];
		if (!s->t[i].pid)
			return NULL;
	}
}

static void del(struct pd_sysfork *s, struct slot *e)
{
	unsigned i = (unsigned)(e - s->t), j = i;

	for (;;) {
		unsigned k;

		j = (j + 1) & (TABLE_SLOTS - 1);
		if (!s->t[j].pid)
			break;
		k = hash(s->t[j].pid);
		/* move j back to i unless its home k lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->t[i] = s->t[j];
		i = j;
	}
	memset(&s->t[i], 0, sizeof(s->t[i]));
	s->used--;
}

static void fork_init(struct pt_fork *f)
{
	*f = (struct pt_fork){.parent_pid = -1,
			      .child_pid = -1,
			      .ts_ns = PT_NO_TIME,
			      .kernel_clone_ns = PT_NO_TIME,
			      .copy_process_ns = PT_NO_TIME,
			      .dup_mmap_ns = PT_NO_TIME,
			      .copy_page_range_ns = PT_NO_TIME,
			      .vmas = PT_NULL,
			      .pte_passes = PT_NULL,
			      .lock_breaks = PT_NULL,
			      .ptes = PT_NULL,
			      .max_lock_hold_ns = PT_NO_TIME,
			      .copy_resched = PT_NULL,
			      .copy_offcpu_ns = PT_NO_TIME};
}

static int emit(struct pd_sysfork *s, const struct slot *e, uint64_t exit_ns, unsigned flags)
{
	struct pt_fork f;

	fork_init(&f);
	f.parent_pid = e->pid;
	f.child_pid = e->child_pid;
	snprintf(f.parent_comm, sizeof(f.parent_comm), "%s", e->comm);
	snprintf(f.child_comm, sizeof(f.child_comm), "%s", e->child_comm);
	if (e->enter_ns != PT_NO_TIME) {
		f.ts_ns = e->enter_ns;
		if (exit_ns != PT_NO_TIME && exit_ns >= e->enter_ns)
			f.kernel_clone_ns = exit_ns - e->enter_ns;
	} else {
		f.ts_ns = e->fork_ns;
	}
	f.flags = flags | (e->lost ? PT_FORK_LOST_EVENTS : 0);
	f.complete = !f.flags;
	if (e->nt_child && e->nt_child == e->child_pid) {
		f.has_clone_flags = true;
		f.clone_flags = e->nt_flags;
		f.kind = pt_kind_of_flags(e->nt_flags);
	}
	return s->fn(&f, s->ctx);
}

int pd_sysfork_enter(struct pd_sysfork *s, int pid, uint64_t ts_ns)
{
	struct slot *e;
	unsigned i;

	if (pid <= 0)
		return 0;
	e = find(s, pid);
	if (e) {
		/* the previous syscall's exit was lost */
		int ret = e->has_fork ? emit(s, e, PT_NO_TIME, PT_FORK_LOST_EVENTS) : 0;

		if (ret)
			return ret;
		*e = (struct slot){.pid = pid, .enter_ns = ts_ns};
		return 0;
	}
	if (s->used >= TABLE_SLOTS / 4 * 3)
		return 0; /* full: this task's fork goes without kernel_clone_ns */
	for (i = hash(pid); s->t[i].pid; i = (i + 1) & (TABLE_SLOTS - 1))
		;
	s->t[i] = (struct slot){.pid = pid, .enter_ns = ts_ns};
	s->used++;
	return 0;
}

int pd_sysfork_fork(struct pd_sysfork *s, int pid, const char *comm, int child_pid,
		    const char *child_comm, uint64_t ts_ns)
{
	struct slot *e = pid > 0 ? find(s, pid) : NULL;

	if (!e || e->has_fork) {
		/* no syscall open (or a second fork in one: cannot be): the event alone */
		struct slot one = {.pid = pid, .enter_ns = PT_NO_TIME, .fork_ns = ts_ns,
				   .child_pid = child_pid};
		bool early = ts_ns < s->start_ns + s->grace_ns;

		snprintf(one.comm, sizeof(one.comm), "%s", comm ? comm : "");
		snprintf(one.child_comm, sizeof(one.child_comm), "%s", child_comm ? child_comm : "");
		if (s->loose.pid == pid && s->loose.child == child_pid) {
			one.nt_child = child_pid;
			one.nt_flags = s->loose.flags;
		}
		return emit(s, &one, PT_NO_TIME, early ? PT_FORK_PARTIAL : 0);
	}
	e->has_fork = true;
	e->fork_ns = ts_ns;
	e->child_pid = child_pid;
	snprintf(e->comm, sizeof(e->comm), "%s", comm ? comm : "");
	snprintf(e->child_comm, sizeof(e->child_comm), "%s", child_comm ? child_comm : "");
	return 0;
}

int pd_sysfork_newtask(struct pd_sysfork *s, int pid, int child_pid, uint64_t clone_flags)
{
	struct slot *e = pid > 0 ? find(s, pid) : NULL;

	if (child_pid <= 0)
		return 0;
	if (e && !e->has_fork) {
		e->nt_child = child_pid;
		e->nt_flags = clone_flags;
	} else {
		s->loose = (struct newtask){pid, child_pid, clone_flags};
	}
	return 0;
}

int pd_sysfork_exit(struct pd_sysfork *s, int pid, int64_t ret, uint64_t ts_ns)
{
	struct slot *e = pid > 0 ? find(s, pid) : NULL;
	int r = 0;

	if (!e)
		return 0; /* a child returning 0 from its first syscall exit, or untracked */
	if (e->has_fork)
		r = emit(s, e, ret > 0 ? ts_ns : PT_NO_TIME, ret > 0 ? 0 : PT_FORK_LOST_EVENTS);
	del(s, e);
	return r;
}

void pd_sysfork_lost(struct pd_sysfork *s)
{
	for (unsigned i = 0; i < TABLE_SLOTS; i++)
		if (s->t[i].pid)
			s->t[i].lost = true;
}

int pd_sysfork_finish(struct pd_sysfork *s)
{
	int ret = 0;

	for (unsigned i = 0; i < TABLE_SLOTS; i++) {
		struct slot *e = &s->t[i];

		if (e->pid && e->has_fork && !ret)
			ret = emit(s, e, PT_NO_TIME, PT_FORK_PARTIAL);
	}
	memset(s->t, 0, TABLE_SLOTS * sizeof(*s->t));
	s->used = 0;
	return ret;
}
