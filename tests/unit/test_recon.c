/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the call reconstruction and fork derivation (recon.c), fed
 * literal event sequences, one per edge case of real recordings.
 */
#include <stdlib.h>
#include <string.h>

#include "recon.h"
#include "check.h"

#define US 1000ull
#define NT PT_NO_TIME

struct forks {
	struct pt_fork f[16];
	int n;
};

static int keep(const struct pt_fork *f, void *ctx)
{
	struct forks *fs = ctx;

	if (fs->n < 16)
		pt_fork_copy(&fs->f[fs->n], f);
	fs->n++;
	return 0;
}

static void forks_free(struct forks *fs)
{
	for (int i = 0; i < fs->n && i < 16; i++)
		pt_fork_release(&fs->f[i]);
	fs->n = 0;
}

/* Function ids: the address of the name literal is unique per name. */
static uint64_t fid(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h | 1;
}

static struct recon *R;

static void feed(enum pt_event_type type, int cpu, int pid, int depth, const char *func,
		 uint64_t ts, uint64_t dur)
{
	struct pt_event ev;

	pt_event_init(&ev, type);
	ev.cpu = cpu;
	ev.pid = pid;
	ev.depth = depth;
	ev.func = func;
	ev.func_id = func ? fid(func) : 0;
	ev.ts_ns = ts;
	ev.dur_ns = dur;
	ev.comm = pid >= 0 ? "bash" : NULL;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

#define ENTRY(cpu, pid, d, f, ts) feed(PT_EV_ENTRY, cpu, pid, d, f, ts, NT)
#define EXIT(cpu, pid, d, f, ts, dur) feed(PT_EV_EXIT, cpu, pid, d, f, ts, dur)
#define LEAF(cpu, pid, d, f, ts, dur) feed(PT_EV_LEAF, cpu, pid, d, f, ts, dur)

static void fork_event(int cpu, int pid, int child, uint64_t ts)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_FORK);
	ev.cpu = cpu;
	ev.pid = pid;
	ev.child_pid = child;
	ev.comm = "bash";
	ev.child_comm = "bash";
	ev.ts_ns = ts;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

static void start(struct forks *fs)
{
	struct recon_opts o = {.on_fork = keep, .ctx = fs};

	memset(fs, 0, sizeof(*fs));
	CHECK_EQ(recon_new(&o, &R), 0);
}

static void finish(void)
{
	CHECK_EQ(recon_finish(R), 0);
	recon_free(R);
	R = NULL;
}

/* One pass of an inlined copy_pte_range: lock, lock, N x vm_normal_page, unlock, unlock,
 * __cond_resched (which schedules, with __schedule under it, if @switch_after);
 * children at depth @d; starts at @t, each call 1 us apart. */
static uint64_t pass_sw(int pid, int d, uint64_t t, int ptes, bool pte_alloc, bool switch_after)
{
	if (pte_alloc) {
		LEAF(0, pid, d, "__pte_alloc", t, US / 2);
		t += US;
	}
	LEAF(0, pid, d, "_raw_spin_lock", t, US / 2);
	t += US;
	LEAF(0, pid, d, "_raw_spin_lock", t, US / 2);
	t += US;
	for (int i = 0; i < ptes; i++, t += US)
		LEAF(0, pid, d, "vm_normal_page", t, US / 2);
	LEAF(0, pid, d, "_raw_spin_unlock", t, US / 2);
	t += US;
	LEAF(0, pid, d, "_raw_spin_unlock", t, US / 2);
	t += US;
	if (switch_after) {
		ENTRY(0, pid, d, "__cond_resched", t);
		LEAF(0, pid, d + 1, "__schedule", t + US, 100 * US);
		EXIT(0, pid, d, "__cond_resched", t + 102 * US, 102 * US);
		return t + 103 * US;
	}
	LEAF(0, pid, d, "__cond_resched", t, US / 2);
	return t + US;
}

static uint64_t pass(int pid, int d, uint64_t t, int ptes, bool pte_alloc)
{
	return pass_sw(pid, d, t, ptes, pte_alloc, false);
}

/* kernel_clone > copy_process > dup_mmap > 2 x copy_page_range, fork event inside. */
static void test_full_fork(void)
{
	struct forks fs;
	uint64_t t;

	start(&fs);
	ENTRY(0, 10, 0, "kernel_clone", 1000 * US);
	ENTRY(0, 10, 1, "copy_process", 1001 * US);
	ENTRY(0, 10, 2, "dup_mmap", 1002 * US);
	LEAF(0, 10, 3, "copy_page_range", 1003 * US, US); /* a VMA that needs no copy */
	ENTRY(0, 10, 3, "copy_page_range", 1005 * US);
	t = pass(10, 4, 1006 * US, 3, true);  /* new PMD */
	t = pass_sw(10, 4, t, 2, true, true); /* new PMD; ends scheduling away */
	t = pass(10, 4, t, 4, false);	      /* resumed: a lock break */
	EXIT(0, 10, 3, "copy_page_range", t, t - 1005 * US);
	EXIT(0, 10, 2, "dup_mmap", t + US, t + US - 1002 * US);
	fork_event(0, 10, 11, t + 2 * US);
	EXIT(0, 10, 1, "copy_process", t + 3 * US, t + 3 * US - 1001 * US);
	EXIT(0, 10, 0, "kernel_clone", t + 4 * US, t + 4 * US - 1000 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	if (fs.n != 1)
		return;
	struct pt_fork *f = &fs.f[0];

	CHECK_EQ(f->parent_pid, 10);
	CHECK_EQ(f->child_pid, 11);
	CHECK(!strcmp(f->parent_comm, "bash"));
	CHECK(f->complete);
	CHECK_EQ(f->flags, 0);
	CHECK_EQ(f->ts_ns, 1000 * US);
	CHECK_EQ(f->kernel_clone_ns, t + 4 * US - 1000 * US);
	CHECK_EQ(f->copy_process_ns, t + 3 * US - 1001 * US);
	CHECK_EQ(f->dup_mmap_ns, t + US - 1002 * US);
	CHECK_EQ(f->copy_page_range_ns, US + (t - 1005 * US));
	CHECK_EQ(f->vmas, 2);
	CHECK_EQ(f->pte_passes, 3);
	CHECK_EQ(f->lock_breaks, 1);
	CHECK_EQ(f->ptes, 9);
	CHECK_EQ(f->nr_pass, 3);
	CHECK(f->pass[0].new_pmd && f->pass[1].new_pmd && !f->pass[2].new_pmd);
	CHECK(f->pass[2].resumed);
	CHECK_EQ(f->pass[0].ptes, 3);
	CHECK_EQ(f->pass[2].ptes, 4);
	/* hold: first lock's start to last unlock's end: 2 locks + N ptes + 1 unlock + 0.5 */
	CHECK_EQ(f->pass[0].hold_ns, (2 + 3 + 1) * US + US / 2);
	CHECK_EQ(f->max_lock_hold_ns, (2 + 4 + 1) * US + US / 2);
	CHECK_EQ(f->vma[1].ptes, 9);
	CHECK_EQ(f->vma[1].passes, 3);
	forks_free(&fs);
}

/* Old names: _do_fork fills kernel_clone_ns; _cond_resched and rt_spin_lock keep roles. */
static void test_old_names(void)
{
	struct forks fs;

	start(&fs);
	ENTRY(0, 5, 0, "_do_fork", 100 * US);
	ENTRY(0, 5, 1, "copy_page_range", 101 * US);
	LEAF(0, 5, 2, "__pte_alloc", 102 * US, US);
	LEAF(0, 5, 2, "rt_spin_lock", 103 * US, US);
	LEAF(0, 5, 2, "rt_spin_lock", 104 * US, US);
	LEAF(0, 5, 2, "rt_spin_unlock", 105 * US, US);
	LEAF(0, 5, 2, "rt_spin_unlock", 106 * US, US);
	ENTRY(0, 5, 2, "_cond_resched", 107 * US); /* it schedules: */
	LEAF(0, 5, 3, "__schedule", 107 * US + 100, US / 2);
	EXIT(0, 5, 2, "_cond_resched", 108 * US - 100, US - 200);
	LEAF(0, 5, 2, "rt_spin_lock", 108 * US, US); /* resumed after the resched */
	LEAF(0, 5, 2, "rt_spin_lock", 109 * US, US);
	LEAF(0, 5, 2, "_cond_resched", 110 * US, US);
	EXIT(0, 5, 1, "copy_page_range", 112 * US, 11 * US);
	EXIT(0, 5, 0, "_do_fork", 113 * US, 13 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].kernel_clone_ns, 13 * US);
	CHECK_EQ(fs.f[0].pte_passes, 2);
	CHECK_EQ(fs.f[0].lock_breaks, 1);
	/* first pass held from 103 to the end of the second unlock at 107 */
	CHECK_EQ(fs.f[0].pass[0].hold_ns, 4 * US);
	/* no vm_normal_page in the trace: PTEs are not known */
	CHECK_EQ(fs.f[0].ptes, PT_NULL);
	CHECK(fs.f[0].complete);
	forks_free(&fs);
}

/* copy_pte_range as a real function: passes are its calls plus resumes inside one call. */
static void test_cpte_function(void)
{
	struct forks fs;

	start(&fs);
	ENTRY(0, 7, 0, "copy_page_range", 10 * US);
	ENTRY(0, 7, 1, "copy_pte_range", 11 * US);
	LEAF(0, 7, 2, "_raw_spin_lock", 12 * US, US);
	LEAF(0, 7, 2, "_raw_spin_lock", 13 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 14 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 15 * US, US);
	LEAF(0, 7, 2, "__cond_resched", 16 * US, 40 * US); /* 40 us: it scheduled */
	LEAF(0, 7, 2, "_raw_spin_lock", 57 * US, US);	   /* same call: resumed */
	LEAF(0, 7, 2, "_raw_spin_lock", 18 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 19 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 20 * US, US);
	EXIT(0, 7, 1, "copy_pte_range", 22 * US, 11 * US);
	ENTRY(0, 7, 1, "copy_pte_range", 23 * US); /* next PMD: new, no __pte_alloc traced */
	LEAF(0, 7, 2, "_raw_spin_lock", 24 * US, US);
	LEAF(0, 7, 2, "_raw_spin_lock", 25 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 26 * US, US);
	LEAF(0, 7, 2, "_raw_spin_unlock", 27 * US, US);
	EXIT(0, 7, 1, "copy_pte_range", 29 * US, 6 * US);
	EXIT(0, 7, 0, "copy_page_range", 30 * US, 20 * US);
	fork_event(0, 7, 8, 31 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, 3);
	CHECK_EQ(fs.f[0].lock_breaks, 1);
	CHECK_EQ(fs.f[0].child_pid, 8);
	/* a copy_page_range run is whole only if the task was seen before it */
	CHECK(!fs.f[0].complete);
	CHECK(fs.f[0].flags & PT_FORK_PARTIAL);
	forks_free(&fs);
}

/* The recording starts inside copy_page_range: an orphan exit names it; partial. */
static void test_orphan_exit(void)
{
	struct forks fs;

	start(&fs);
	LEAF(1, -1, 1, "vm_normal_page", NT, US);
	LEAF(1, -1, 1, "vm_normal_page", NT, US);
	LEAF(1, -1, 1, "_raw_spin_unlock", NT, US);
	EXIT(1, -1, 0, "copy_page_range", NT, 500 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK(fs.f[0].flags & PT_FORK_PARTIAL);
	CHECK(!fs.f[0].complete);
	CHECK_EQ(fs.f[0].copy_page_range_ns, 500 * US);
	/* the calls seen under the then-unknown caller are counted */
	CHECK_EQ(fs.f[0].ptes, 2);
	CHECK_EQ(fs.f[0].vmas, 1);
	forks_free(&fs);
}

/* Lost events while a fork is open flag it; a fork after that is whole again. */
static void test_lost(void)
{
	struct forks fs;
	struct pt_event ev;

	start(&fs);
	ENTRY(0, 3, 0, "kernel_clone", 1 * US);
	ENTRY(0, 3, 1, "copy_process", 2 * US);
	pt_event_init(&ev, PT_EV_LOST);
	ev.cpu = 0;
	ev.lost = 42;
	CHECK_EQ(recon_feed(&ev, R), 0);
	EXIT(0, 3, 1, "copy_process", 8 * US, 6 * US);
	EXIT(0, 3, 0, "kernel_clone", 9 * US, 8 * US);
	ENTRY(0, 3, 0, "kernel_clone", 20 * US);
	EXIT(0, 3, 0, "kernel_clone", 29 * US, 9 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	CHECK(fs.f[0].flags & PT_FORK_LOST_EVENTS);
	CHECK(!fs.f[0].complete);
	CHECK(!(fs.f[1].flags & PT_FORK_LOST_EVENTS));
	CHECK(fs.f[1].complete);
	forks_free(&fs);
}

/* An interrupt between a function's return and its exit record shows at the same depth. */
static void test_irq_before_exit(void)
{
	struct forks fs;

	start(&fs);
	LEAF(0, 4, 0, "schedule", 1 * US, US); /* the task was seen before */
	ENTRY(0, 4, 0, "copy_page_range", 10 * US);
	LEAF(0, 4, 1, "_raw_spin_lock", 11 * US, US);
	LEAF(0, 4, 1, "_raw_spin_lock", 12 * US, US);
	ENTRY(0, 4, 1, "vm_normal_page", 13 * US);
	LEAF(0, 4, 1, "irq_enter_rcu", 14 * US, US); /* same depth as vm_normal_page */
	ENTRY(0, 4, 1, "__sysvec_apic_timer_interrupt", 15 * US);
	LEAF(0, 4, 2, "hrtimer_interrupt", 16 * US, US);
	EXIT(0, 4, 1, "__sysvec_apic_timer_interrupt", 18 * US, 3 * US);
	EXIT(0, 4, 1, "vm_normal_page", 14 * US, US);
	LEAF(0, 4, 1, "_raw_spin_unlock", 19 * US, US);
	LEAF(0, 4, 1, "_raw_spin_unlock", 20 * US, US);
	LEAF(0, 4, 1, "__cond_resched", 21 * US, US / 2);
	EXIT(0, 4, 0, "copy_page_range", 22 * US, 12 * US);
	fork_event(0, 4, 9, 23 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].flags, 0);
	CHECK(fs.f[0].complete);
	CHECK_EQ(fs.f[0].ptes, 1);
	CHECK_EQ(fs.f[0].pte_passes, 1);
	forks_free(&fs);
}

/* Text without task names: a call entered on CPU 1 returns on CPU 0 as "} / * f * /". */
static void test_migration_no_pid(void)
{
	struct forks fs;

	start(&fs);
	LEAF(1, -1, 0, "copy_page_range", NT, US);
	ENTRY(1, -1, 0, "copy_page_range", NT);
	LEAF(1, -1, 1, "vm_normal_page", NT, US);
	LEAF(0, -1, 1, "vm_normal_page", NT, US); /* still the same call, now on CPU 0 */
	EXIT(0, -1, 0, "copy_page_range", NT, 90 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].vmas, 2);
	CHECK_EQ(fs.f[0].copy_page_range_ns, 91 * US);
	CHECK_EQ(fs.f[0].ptes, 2);
	CHECK(fs.f[0].flags & PT_FORK_BOUNDARY_INFERRED);
	forks_free(&fs);
}

/* Only copy_page_range traced, fork events present: forks end at their events;
 * without fork events, a gap splits two runs and both are boundary_inferred. */
static void test_cpr_runs(void)
{
	struct forks fs;

	start(&fs);
	LEAF(0, 2, 0, "mutex_unlock", 1 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 12 * US, US);
	fork_event(0, 2, 20, 14 * US);
	LEAF(0, 2, 0, "copy_page_range", 50 * US, US);
	fork_event(0, 2, 21, 52 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	CHECK_EQ(fs.f[0].vmas, 2);
	CHECK_EQ(fs.f[0].child_pid, 20);
	CHECK(fs.f[0].complete);
	CHECK_EQ(fs.f[1].vmas, 1);
	CHECK_EQ(fs.f[1].child_pid, 21);
	forks_free(&fs);

	start(&fs);
	LEAF(0, 2, 0, "mutex_unlock", 1 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 12 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5000 * US, US); /* 5 ms later: another fork */
	finish();
	CHECK_EQ(fs.n, 2);
	CHECK_EQ(fs.f[0].vmas, 2);
	CHECK_EQ(fs.f[1].vmas, 1);
	CHECK(fs.f[0].flags & PT_FORK_BOUNDARY_INFERRED);
	CHECK(!fs.f[0].complete);
	forks_free(&fs);
}

/* A fork whose copy_page_range run is cut by a gap (its task preempted for
 * over 1 ms between VMAs): the fork event joins the pieces; a piece that
 * cannot be joined is never complete. */
static void test_split_fork(void)
{
	struct forks fs;
	struct recon_opts o = {.on_fork = keep, .ctx = &fs, .caps_known = true};

	/* no fork event seen yet when the gap comes: the pieces are joined */
	start(&fs);
	LEAF(0, 2, 0, "mutex_unlock", 1 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 12 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5000 * US, US);
	fork_event(0, 2, 20, 5002 * US);
	LEAF(0, 2, 0, "copy_page_range", 9000 * US, US); /* the next fork */
	fork_event(0, 2, 21, 9002 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	CHECK_EQ(fs.f[0].vmas, 3);
	CHECK_EQ(fs.f[0].child_pid, 20);
	CHECK(fs.f[0].complete);
	CHECK_EQ(fs.f[0].flags, 0);
	CHECK_EQ(fs.f[0].copy_page_range_ns, 3 * US);
	CHECK_EQ(fs.f[1].vmas, 1);
	CHECK(fs.f[1].complete);
	forks_free(&fs);

	/* fork events known: a gap does not split the run at all */
	start(&fs);
	fork_event(1, 9, 10, 1 * US);
	LEAF(0, 2, 0, "mutex_unlock", 2 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5000 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5002 * US, US);
	fork_event(0, 2, 20, 5004 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	CHECK_EQ(fs.f[1].vmas, 3);
	CHECK_EQ(fs.f[1].child_pid, 20);
	CHECK(fs.f[1].complete);
	forks_free(&fs);

	/* the recording began inside the first piece: the joined fork is partial */
	start(&fs);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5000 * US, US);
	fork_event(0, 2, 20, 5002 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].vmas, 2);
	CHECK(!fs.f[0].complete);
	CHECK(fs.f[0].flags & PT_FORK_PARTIAL);
	forks_free(&fs);

	/* handed over as they end, without fork events known: the piece after
	 * the gap cannot be joined, and is not complete */
	memset(&fs, 0, sizeof(fs));
	o.caps = PT_CAP(PT_ROLE_COPY_PAGE_RANGE) | PT_CAP_TIMES;
	CHECK_EQ(recon_new(&o, &R), 0);
	LEAF(0, 2, 0, "mutex_unlock", 1 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 10 * US, US);
	LEAF(0, 2, 0, "copy_page_range", 5000 * US, US);
	fork_event(0, 2, 20, 5002 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	for (int i = 0; i < fs.n && i < 2; i++) {
		CHECK(!fs.f[i].complete);
		CHECK(fs.f[i].flags & PT_FORK_BOUNDARY_INFERRED);
	}
	forks_free(&fs);
}

/* A fork event with no graph at all (syscall-mode data): still a fork. */
static void test_event_only(void)
{
	struct forks fs;

	start(&fs);
	fork_event(3, 100, 101, 77 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].child_pid, 101);
	CHECK_EQ(fs.f[0].ts_ns, 77 * US);
	CHECK_EQ(fs.f[0].kernel_clone_ns, NT);
	CHECK_EQ(fs.f[0].vmas, PT_NULL);
	CHECK_EQ(fs.f[0].ptes, PT_NULL);
	CHECK_EQ(fs.f[0].pte_passes, PT_NULL);
	forks_free(&fs);
}

static void newtask_event(int pid, int child, uint64_t flags, uint64_t ts)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_NEWTASK);
	ev.cpu = 0;
	ev.pid = pid;
	ev.child_pid = child;
	ev.clone_flags = flags;
	ev.ts_ns = ts;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

/* kernel_clone > copy_process (> dup_mmap > copy_page_range when @copy), then
 * the vfork wait when @wait, and the fork event. */
static void clone_graph(int pid, uint64_t t, bool copy, bool wait)
{
	ENTRY(0, pid, 0, "kernel_clone", t);
	ENTRY(0, pid, 1, "copy_process", t + 1 * US);
	if (copy) {
		ENTRY(0, pid, 2, "dup_mmap", t + 2 * US);
		LEAF(0, pid, 3, "copy_page_range", t + 3 * US, 1 * US);
		EXIT(0, pid, 2, "dup_mmap", t + 5 * US, 3 * US);
	}
	EXIT(0, pid, 1, "copy_process", t + 6 * US, 5 * US);
	fork_event(0, pid, pid + 1, t + 7 * US);
	if (wait)
		LEAF(0, pid, 1, "wait_for_completion_state", t + 8 * US, 300 * US);
	EXIT(0, pid, 0, "kernel_clone", t + 400 * US, 400 * US);
}

static enum pt_fork_kind kind_of(const struct forks *fs, int pid)
{
	for (int i = 0; i < fs->n && i < 16; i++)
		if (fs->f[i].parent_pid == pid)
			return fs->f[i].kind;
	return (enum pt_fork_kind)-1;
}

/* What a clone made: from task_newtask's flags, else from its calls. */
static void test_kinds(void)
{
	struct forks fs;

	start(&fs);
	clone_graph(100, 1000 * US, true, false);
	clone_graph(200, 2000 * US, false, true);
	clone_graph(300, 3000 * US, false, false);
	clone_graph(400, 4000 * US, true, true); /* CLONE_VFORK without CLONE_VM */
	newtask_event(500, 501, 0x3d0f00, 5000 * US);
	fork_event(0, 500, 501, 5001 * US);
	newtask_event(600, 599, 0x11, 6000 * US); /* another child's: not taken */
	fork_event(0, 600, 601, 6001 * US);
	finish();
	CHECK_EQ(fs.n, 6);
	CHECK_EQ(kind_of(&fs, 100), PT_KIND_FORK);
	CHECK_EQ(kind_of(&fs, 200), PT_KIND_SPAWN);
	CHECK_EQ(kind_of(&fs, 300), PT_KIND_THREAD);
	CHECK_EQ(kind_of(&fs, 400), PT_KIND_SPAWN);
	CHECK_EQ(kind_of(&fs, 500), PT_KIND_THREAD);
	CHECK_EQ(kind_of(&fs, 600), PT_KIND_UNKNOWN);
	CHECK(fs.f[4].has_clone_flags || fs.f[5].has_clone_flags);
	forks_free(&fs);

	/* no vfork wait anywhere in the trace: a clone without a copy is not told */
	start(&fs);
	clone_graph(100, 1000 * US, true, false);
	clone_graph(300, 3000 * US, false, false);
	finish();
	CHECK_EQ(kind_of(&fs, 100), PT_KIND_FORK);
	CHECK_EQ(kind_of(&fs, 300), PT_KIND_UNKNOWN);
	forks_free(&fs);
}

/* A recording cut inside a fork: handed over at the end, partial. */
static void test_cut_at_end(void)
{
	struct forks fs;

	start(&fs);
	ENTRY(0, 9, 0, "kernel_clone", 1 * US);
	ENTRY(0, 9, 1, "copy_process", 2 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK(fs.f[0].flags & PT_FORK_PARTIAL);
	CHECK(!fs.f[0].complete);
	CHECK_EQ(fs.f[0].kernel_clone_ns, NT);
	forks_free(&fs);
}

/* Two tasks interleaved on two CPUs are rebuilt separately. */
static void test_two_tasks(void)
{
	struct forks fs;

	start(&fs);
	ENTRY(0, 1, 0, "kernel_clone", 1 * US);
	ENTRY(1, 2, 0, "kernel_clone", 2 * US);
	LEAF(0, 1, 1, "copy_page_range", 3 * US, US);
	EXIT(1, 2, 0, "kernel_clone", 5 * US, 3 * US);
	LEAF(0, 1, 1, "copy_page_range", 6 * US, US);
	EXIT(0, 1, 0, "kernel_clone", 8 * US, 7 * US);
	finish();
	CHECK_EQ(fs.n, 2);
	for (int i = 0; i < fs.n && i < 2; i++) {
		if (fs.f[i].parent_pid == 1)
			CHECK_EQ(fs.f[i].vmas, 2);
		else
			CHECK_EQ(fs.f[i].vmas, 0);
		CHECK(fs.f[i].complete);
	}
	forks_free(&fs);
}

static void switch_event(int cpu, int pid, int next_pid, bool preempted, uint64_t ts)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_SWITCH);
	ev.cpu = cpu;
	ev.pid = pid;
	ev.next_pid = next_pid;
	ev.preempted = preempted;
	ev.ts_ns = ts;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

/*
 * Live fork detail with sched_switch armed per fork (PT_CAP_SWITCH_WINDOW):
 * task 1 copies one VMA, is preempted in it for 10 us; task 2 on CPU 1 calls
 * wake_up_new_task (which disarms sched_switch) at @wake_at. Inside the copy,
 * task 1's preemptions may be cut short: null. Outside: counted.
 */
static void window_case(uint64_t wake_at, struct forks *fs)
{
	struct recon_opts o = {.on_fork = keep, .ctx = fs, .caps_known = true};

	o.caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT | PT_CAP_SWITCH | PT_CAP_SWITCH_WINDOW |
		 PT_CAP(PT_ROLE_KERNEL_CLONE) | PT_CAP(PT_ROLE_COPY_PROCESS) |
		 PT_CAP(PT_ROLE_DUP_MMAP) | PT_CAP(PT_ROLE_COPY_PAGE_RANGE) |
		 PT_CAP(PT_ROLE_WAKE_NEW);
	memset(fs, 0, sizeof(*fs));
	CHECK_EQ(recon_new(&o, &R), 0);
	ENTRY(0, 1, 0, "kernel_clone", 1 * US);
	ENTRY(0, 1, 1, "copy_process", 2 * US);
	if (wake_at < 3 * US)
		LEAF(1, 2, 1, "wake_up_new_task", wake_at, US / 2);
	ENTRY(0, 1, 2, "dup_mmap", 3 * US);
	ENTRY(0, 1, 3, "copy_page_range", 4 * US);
	switch_event(0, 1, 3, true, 10 * US);
	switch_event(0, 3, 1, true, 20 * US);
	if (wake_at > 4 * US && wake_at < 30 * US)
		LEAF(1, 2, 1, "wake_up_new_task", wake_at, US / 2);
	EXIT(0, 1, 3, "copy_page_range", 30 * US, 26 * US);
	if (wake_at > 30 * US)
		LEAF(1, 2, 1, "wake_up_new_task", wake_at, US / 2);
	EXIT(0, 1, 2, "dup_mmap", 40 * US, 37 * US);
	EXIT(0, 1, 1, "copy_process", 41 * US, 39 * US);
	fork_event(0, 1, 9, 42 * US);
	LEAF(0, 1, 1, "wake_up_new_task", 43 * US, US / 2);
	EXIT(0, 1, 0, "kernel_clone", 45 * US, 44 * US);
	finish();
}

static void test_switch_window(void)
{
	static const uint64_t outside[] = {2 * US, 35 * US}, inside[] = {5 * US, 25 * US};
	struct forks fs;

	for (int i = 0; i < 2; i++) {
		window_case(outside[i], &fs);
		CHECK_EQ(fs.n, 1);
		CHECK_EQ(fs.f[0].copy_resched, 1);
		CHECK_EQ(fs.f[0].copy_offcpu_ns, 10 * US);
		forks_free(&fs);
		window_case(inside[i], &fs);
		CHECK_EQ(fs.n, 1);
		CHECK_EQ(fs.f[0].copy_resched, PT_NULL);
		CHECK_EQ(fs.f[0].copy_offcpu_ns, NT);
		CHECK(fs.f[0].vmas == 1);
		forks_free(&fs);
	}
}

/* A kprobe entry (depth -1) carrying the task's counters @c (task 0: none). */
static void ctr_entry(int pid, const char *func, uint64_t ts, struct pt_task_ctr c)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_ENTRY);
	ev.cpu = 0;
	ev.pid = pid;
	ev.func = func;
	ev.func_id = fid(func);
	ev.ts_ns = ts;
	ev.comm = "redis";
	ev.ctr = c;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

static void kp_exit(int pid, const char *func, uint64_t ts)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_EXIT);
	ev.cpu = 0;
	ev.pid = pid;
	ev.func = func;
	ev.func_id = fid(func);
	ev.ts_ns = ev.rec_ts_ns = ts;
	ev.comm = "redis";
	CHECK_EQ(recon_feed(&ev, R), 0);
}

/*
 * Live fork detail by kprobes with the task's counters (PT_CAP_TASK_CTR): the
 * first copy_page_range reads @c0, wake_up_new_task (100 us later) @c1; a
 * second copy_page_range's counters are not the start. With @at "dup_mmap",
 * dup_mmap reads @c0 (7 us earlier) and the copy_page_range probes read none,
 * as where dup_mmap is a function of its own; with "uprobe_dup_mmap" that
 * function does, called at the same time from an inlined dup_mmap (6.12).
 * Every call is a kprobe pair: no depth.
 */
static void counters_case_at(struct pt_task_ctr c0, struct pt_task_ctr c1, const char *at,
			     struct forks *fs)
{
	bool at_dup = strcmp(at, "copy_page_range") != 0;
	bool inlined = !strcmp(at, "uprobe_dup_mmap");

	struct recon_opts o = {.on_fork = keep, .ctx = fs, .caps_known = true};
	struct pt_task_ctr later = c0;

	o.caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT | PT_CAP_TASK_CTR |
		 PT_CAP(PT_ROLE_KERNEL_CLONE) | PT_CAP(PT_ROLE_COPY_PROCESS) |
		 PT_CAP(PT_ROLE_DUP_MMAP) | PT_CAP(PT_ROLE_COPY_PAGE_RANGE) |
		 PT_CAP(PT_ROLE_WAKE_NEW);
	memset(fs, 0, sizeof(*fs));
	CHECK_EQ(recon_new(&o, &R), 0);
	later.nivcsw += 1000;
	later.run_delay += 1000;
	ctr_entry(1, "kernel_clone", 1 * US, (struct pt_task_ctr){0});
	ctr_entry(1, "copy_process", 2 * US, (struct pt_task_ctr){0});
	if (inlined) {
		ctr_entry(1, "uprobe_dup_mmap", 3 * US, c0);
		kp_exit(1, "uprobe_dup_mmap", 4 * US);
	} else {
		ctr_entry(1, "dup_mmap", 3 * US, at_dup ? c0 : (struct pt_task_ctr){0});
	}
	ctr_entry(1, "copy_page_range", 10 * US, at_dup ? (struct pt_task_ctr){0} : c0);
	kp_exit(1, "copy_page_range", 50 * US);
	ctr_entry(1, "copy_page_range", 60 * US, at_dup ? (struct pt_task_ctr){0} : later);
	kp_exit(1, "copy_page_range", 80 * US);
	if (!inlined)
		kp_exit(1, "dup_mmap", 90 * US);
	kp_exit(1, "copy_process", 95 * US);
	fork_event(0, 1, 9, 96 * US);
	ctr_entry(1, "wake_up_new_task", 110 * US, c1);
	kp_exit(1, "wake_up_new_task", 111 * US);
	kp_exit(1, "kernel_clone", 112 * US);
	finish();
}

static void counters_case(struct pt_task_ctr c0, struct pt_task_ctr c1, struct forks *fs)
{
	counters_case_at(c0, c1, "copy_page_range", fs);
}

static void test_task_counters(void)
{
	const uint64_t T = 0xffff888004d21a00ull;
	struct pt_task_ctr c0 = {T, 40, 100, 5000000}, c1 = {T, 43, 104, 5000000 + 30 * US};
	struct forks fs;

	/* 3 preemptions, 30 us waiting for a CPU between the two reads */
	counters_case(c0, c1, &fs);
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].copy_resched, 3);
	CHECK_EQ(fs.f[0].copy_offcpu_ns, 30 * US);
	CHECK_EQ(fs.f[0].vmas, 2);
	forks_free(&fs);
	/* none */
	counters_case(c0, c0, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == 0 && fs.f[0].copy_offcpu_ns == 0);
	forks_free(&fs);
	/* the two reads name other tasks (a thread that does not own the mm forked) */
	c1.task = T + 0x2000;
	counters_case(c0, c1, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == PT_NULL && fs.f[0].copy_offcpu_ns == NT);
	forks_free(&fs);
	c1.task = T;
	/* the scheduler did not count the task's runs: the wait is unknown */
	c1.pcount = c0.pcount;
	counters_case(c0, c1, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == 3 && fs.f[0].copy_offcpu_ns == NT);
	forks_free(&fs);
	c1.pcount = 104;
	/* waiting longer than the window (100 us) plus the slack is not believed */
	c1.run_delay = c0.run_delay + 2000 * US;
	counters_case(c0, c1, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == 3 && fs.f[0].copy_offcpu_ns == NT);
	forks_free(&fs);
	/* counters that went backwards */
	c1.run_delay = c0.run_delay + 30 * US;
	c1.nivcsw = c0.nivcsw - 1;
	counters_case(c0, c1, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == PT_NULL);
	forks_free(&fs);
	/* no end read (wake_up_new_task's probe carried none) */
	counters_case(c0, (struct pt_task_ctr){0}, &fs);
	CHECK(fs.n == 1 && fs.f[0].copy_resched == PT_NULL && fs.f[0].copy_offcpu_ns == NT);
	forks_free(&fs);
	/* read once a fork at dup_mmap, or at uprobe_dup_mmap where dup_mmap is
	 * inlined: the same figures, the window from there */
	for (int k = 0; k < 2; k++) {
		const char *at = k ? "uprobe_dup_mmap" : "dup_mmap";

		c1.nivcsw = 43;
		c1.run_delay = c0.run_delay + 30 * US;
		counters_case_at(c0, c1, at, &fs);
		CHECK(fs.n == 1 && fs.f[0].copy_resched == 3 && fs.f[0].copy_offcpu_ns == 30 * US);
		CHECK(fs.n == 1 && fs.f[0].dup_mmap_ns == (k ? NT : 87 * US));
		forks_free(&fs);
		/* ... a wait longer than that window (107 us) plus the slack is not believed */
		c1.run_delay = c0.run_delay + 1108 * US;
		counters_case_at(c0, c1, at, &fs);
		CHECK(fs.n == 1 && fs.f[0].copy_resched == 3 && fs.f[0].copy_offcpu_ns == NT);
		forks_free(&fs);
		/* ... and within it, believed (the window began there, not at copy_page_range) */
		c1.run_delay = c0.run_delay + 1106 * US;
		counters_case_at(c0, c1, at, &fs);
		CHECK(fs.n == 1 && fs.f[0].copy_offcpu_ns == 1106 * US);
		forks_free(&fs);
	}
}


/* ------------------------------------------------- passes from call sites */

/* A kprobe entry of @func fetching @site (NULL: nothing more). */
static void site_entry(int pid, const char *func, uint64_t ts, const struct pt_site *site)
{
	struct pt_event ev;

	pt_event_init(&ev, PT_EV_ENTRY);
	ev.cpu = 0;
	ev.pid = pid;
	ev.func = func;
	ev.func_id = fid(func);
	ev.ts_ns = ts;
	ev.comm = "redis";
	ev.site = site;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

static void site_ev(int pid, enum pt_event_type type, uint64_t ts, struct pt_site s)
{
	struct pt_event ev;

	pt_event_init(&ev, type);
	ev.cpu = 0;
	ev.pid = pid;
	ev.ts_ns = ts;
	ev.site = &s;
	CHECK_EQ(recon_feed(&ev, R), 0);
}

#define LOCK_A 0xffffea0000100028ull
#define LOCK_B 0xffffea0000100068ull

static void pass_start(uint64_t ts, uint64_t ptl)
{
	site_ev(1, PT_EV_PASS_START, ts, (struct pt_site){.ptl = ptl});
}

static void pass_end(uint64_t ts, uint64_t ptl, uint64_t a, uint64_t b, int64_t ret, int32_t anon,
		     int32_t file)
{
	site_ev(1, PT_EV_PASS_END, ts,
		(struct pt_site){.ptl = ptl, .a = a, .b = b, .ret = ret, .rss = {file, anon, 0, 0}});
}

enum site_damage {
	SD_NONE,
	SD_END_ALONE,	  /* a pass end with no start before it */
	SD_OTHER_LOCK,	  /* the end drops another lock than the start took */
	SD_OUTSIDE,	  /* addr outside the VMA */
	SD_CHILD_OFF,	  /* the child's counters 3 pages off the passes' */
	SD_RETRY,	  /* the second pass stops early with -EAGAIN: a retry, no break */
	SD_LOST,	  /* events lost during the fork */
	SD_NEVER_ENDS,	  /* the last pass never ends */
};

/*
 * Live fork detail by kprobes with the call-site probes (PT_CAP_PASS_SITES):
 * VMA 0 is [4 MiB, 8 MiB): a whole PMD in one pass, then a pass that breaks
 * the lock after 160 PTEs and the one that resumes it (352 more); VMA 1 is one
 * page, a file page. The child has one huge page (512 anon) on top.
 */
static const char *sites_case(enum site_damage dmg, int64_t slack, struct forks *fs)
{
	const char *why;

	struct recon_opts o = {.on_fork = keep, .ctx = fs, .caps_known = true,
			       .child_rss_slack = slack};
	struct pt_site v0 = {.vm_start = 0x400000, .vm_end = 0x800000, .has_vma = true};
	struct pt_site v1 = {.vm_start = 0x800000, .vm_end = 0x801000, .has_vma = true};
	struct pt_site child = {.child_rss = {1, 1024 + 512, 0, 0}, .has_child_rss = true};
	/* the parent as dup_mmap's probe reads it: a shmem counter a per-CPU sum
	 * holds below zero reads 0, as /proc/PID/status shows it */
	struct pt_site parent = {.parent_rss = {1, 1024 + 512, 0, -2},
				 .parent_pte = 5 * 4096,
				 .parent_maps = 2,
				 .has_parent_mm = true};

	o.caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT | PT_CAP_PASS_SITES |
		 PT_CAP(PT_ROLE_KERNEL_CLONE) | PT_CAP(PT_ROLE_COPY_PROCESS) |
		 PT_CAP(PT_ROLE_DUP_MMAP) | PT_CAP(PT_ROLE_COPY_PAGE_RANGE) |
		 PT_CAP(PT_ROLE_WAKE_NEW);
	if (dmg == SD_CHILD_OFF)
		child.child_rss[1] += 3;
	memset(fs, 0, sizeof(*fs));
	CHECK_EQ(recon_new(&o, &R), 0);
	site_entry(1, "kernel_clone", 1 * US, NULL);
	site_entry(1, "copy_process", 2 * US, NULL);
	site_entry(1, "dup_mmap", 3 * US, &parent);
	site_entry(1, "copy_page_range", 5 * US, &v0);
	if (dmg == SD_END_ALONE)
		pass_end(8 * US, LOCK_A, 0x400000, 0x400000, 0, 0, 0);
	pass_start(10 * US, LOCK_A);
	pass_end(22 * US, LOCK_A, 0x600000, 0x600000, 0, 512, 0);
	pass_start(23 * US, LOCK_B);
	pass_end(30 * US, dmg == SD_OTHER_LOCK ? LOCK_A : LOCK_B,
		 dmg == SD_OUTSIDE ? 0x900000 : 0x6a0000, 0x800000, dmg == SD_RETRY ? -11 : 0,
		 160, 0);
	if (dmg == SD_LOST) {
		struct pt_event lost;

		pt_event_init(&lost, PT_EV_LOST);
		lost.ts_ns = 31 * US;
		CHECK_EQ(recon_feed(&lost, R), 0);
	}
	pass_start(40 * US, LOCK_B);
	if (dmg != SD_NEVER_ENDS)
		pass_end(50 * US, LOCK_B, 0x800000, 0x800000, 0, 352, 0);
	kp_exit(1, "copy_page_range", 51 * US);
	site_entry(1, "copy_page_range", 52 * US, &v1);
	pass_start(53 * US, LOCK_A);
	pass_end(54 * US, LOCK_A, 0x801000, 0x801000, 0, 0, 1);
	kp_exit(1, "copy_page_range", 55 * US);
	kp_exit(1, "dup_mmap", 90 * US);
	kp_exit(1, "copy_process", 95 * US);
	fork_event(0, 1, 9, 96 * US);
	site_entry(1, "wake_up_new_task", 110 * US, &child);
	kp_exit(1, "wake_up_new_task", 111 * US);
	kp_exit(1, "kernel_clone", 112 * US);
	CHECK_EQ(recon_finish(R), 0);
	why = recon_pass_mismatch(R);
	recon_free(R);
	R = NULL;
	return why;
}

static void check_site_nulls(const struct forks *fs, bool flagged)
{
	const struct pt_fork *f = &fs->f[0];

	CHECK_EQ(fs->n, 1);
	CHECK_EQ((f->flags & PT_FORK_PASS_MISMATCH) != 0, flagged);
	CHECK(!f->complete);
	CHECK(f->pte_passes == PT_NULL && f->lock_breaks == PT_NULL && f->ptes == PT_NULL);
	CHECK_EQ(f->max_lock_hold_ns, NT);
	CHECK_EQ(f->nr_pass, 0);
	CHECK_EQ(f->vmas, 2); /* the rest of the fork stays */
	CHECK_EQ(f->kernel_clone_ns, 111 * US);
}

static void test_call_sites(void)
{
	const char *why;
	struct forks fs;
	const struct pt_fork *f = &fs.f[0];

	CHECK(sites_case(SD_NONE, 0, &fs) == NULL);
	CHECK_EQ(fs.n, 1);
	CHECK(f->complete && !f->flags);
	/* the parent's memory as the fork began, in bytes (the /proc reader's fields) */
	CHECK_EQ(f->mem.v[PT_MEM_RSS_ANON], (1024 + 512) * 4096);
	CHECK_EQ(f->mem.v[PT_MEM_RSS_FILE], 4096);
	CHECK(pt_mem_has(&f->mem, PT_MEM_RSS_SHMEM) && f->mem.v[PT_MEM_RSS_SHMEM] == 0);
	CHECK_EQ(f->mem.v[PT_MEM_PTE], 5 * 4096);
	CHECK_EQ(f->mem.v[PT_MEM_MAP_COUNT], 2);
	CHECK(!pt_mem_has(&f->mem, PT_MEM_ANON_HUGE) && !pt_mem_has(&f->mem, PT_MEM_CHILD_EXEC));
	CHECK_EQ(f->pte_passes, 4);
	CHECK_EQ(f->lock_breaks, 1);
	CHECK_EQ(f->ptes, 1025);
	CHECK_EQ(f->max_lock_hold_ns, 12 * US);
	CHECK_EQ(f->vmas, 2);
	CHECK(f->nr_pass == 4 && f->pass[0].new_pmd && !f->pass[0].resumed);
	CHECK(f->pass[1].new_pmd && !f->pass[1].resumed && f->pass[1].ptes == 160);
	CHECK(!f->pass[2].new_pmd && f->pass[2].resumed && f->pass[2].hold_ns == 10 * US);
	CHECK(f->pass[3].new_pmd && f->pass[3].vma == 1 && f->pass[3].ptes == 1);
	CHECK(f->vma[0].passes == 3 && f->vma[0].ptes == 1024 && f->vma[1].ptes == 1);
	forks_free(&fs);
	/* a retry is not a lock break; the pass after it resumed nothing broken */
	sites_case(SD_RETRY, 0, &fs);
	CHECK(fs.n == 1 && f->complete && f->pte_passes == 4 && f->lock_breaks == 0);
	CHECK(!f->pass[2].new_pmd && !f->pass[2].resumed);
	forks_free(&fs);
	/* the child's counters 3 pages off: exact counters say mismatch, a slack
	 * of 4 (per-CPU counters) accepts it */
	why = sites_case(SD_CHILD_OFF, 0, &fs);
	check_site_nulls(&fs, true);
	CHECK(why && strstr(why, "child"));
	forks_free(&fs);
	sites_case(SD_CHILD_OFF, 4, &fs);
	CHECK(fs.n == 1 && f->complete && f->ptes == 1025);
	forks_free(&fs);
	/* not compared at all */
	sites_case(SD_CHILD_OFF, -1, &fs);
	CHECK(fs.n == 1 && f->complete && f->ptes == 1025);
	forks_free(&fs);
	sites_case(SD_END_ALONE, 0, &fs);
	check_site_nulls(&fs, true);
	forks_free(&fs);
	why = sites_case(SD_OTHER_LOCK, 0, &fs);
	check_site_nulls(&fs, true);
	CHECK(why && strstr(why, "lock"));
	forks_free(&fs);
	sites_case(SD_OUTSIDE, 0, &fs);
	check_site_nulls(&fs, true);
	forks_free(&fs);
	sites_case(SD_NEVER_ENDS, 0, &fs);
	check_site_nulls(&fs, true);
	forks_free(&fs);
	/* a thread or a vfork child: no copy_page_range, the child's mm is its
	 * parent's and its counters say nothing about a copy */
	{
		struct recon_opts o = {.on_fork = keep, .ctx = &fs, .caps_known = true,
				       .caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT | PT_CAP_PASS_SITES |
					       PT_CAP(PT_ROLE_KERNEL_CLONE) |
					       PT_CAP(PT_ROLE_COPY_PAGE_RANGE) |
					       PT_CAP(PT_ROLE_WAKE_NEW)};
		struct pt_site parent = {.child_rss = {100, 4000, 0, 3}, .has_child_rss = true};

		memset(&fs, 0, sizeof(fs));
		CHECK_EQ(recon_new(&o, &R), 0);
		site_entry(1, "kernel_clone", 1 * US, NULL);
		fork_event(0, 1, 9, 5 * US);
		site_entry(1, "wake_up_new_task", 6 * US, &parent);
		kp_exit(1, "wake_up_new_task", 7 * US);
		kp_exit(1, "kernel_clone", 8 * US);
		finish();
		CHECK(fs.n == 1 && f->complete && !f->flags && f->pte_passes == 0 && f->ptes == 0);
		forks_free(&fs);
	}
	/* lost events explain a hole: nulls, flagged lost_events, not pass_mismatch */
	sites_case(SD_LOST, 0, &fs);
	CHECK(fs.n == 1 && (f->flags & PT_FORK_LOST_EVENTS));
	CHECK(f->pte_passes != PT_NULL || !(f->flags & PT_FORK_PASS_MISMATCH));
	forks_free(&fs);
}

/* max_graph_depth = 2: copy_page_range and below never show; their fields are null. */
static void test_depth_limited(void)
{
	struct forks fs;

	start(&fs);
	ENTRY(0, 6, 0, "kernel_clone", 10 * US);
	ENTRY(0, 6, 1, "copy_process", 11 * US);
	fork_event(0, 6, 60, 59 * US); /* fires inside copy_process */
	EXIT(0, 6, 1, "copy_process", 61 * US, 50 * US);
	EXIT(0, 6, 0, "kernel_clone", 70 * US, 60 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].child_pid, 60);
	CHECK_EQ(fs.f[0].kernel_clone_ns, 60 * US);
	CHECK_EQ(fs.f[0].copy_process_ns, 50 * US);
	CHECK_EQ(fs.f[0].dup_mmap_ns, NT);
	CHECK_EQ(fs.f[0].copy_page_range_ns, NT);
	CHECK_EQ(fs.f[0].vmas, PT_NULL);
	CHECK_EQ(fs.f[0].pte_passes, PT_NULL);
	CHECK_EQ(fs.f[0].lock_breaks, PT_NULL);
	CHECK_EQ(fs.f[0].ptes, PT_NULL);
	CHECK(fs.f[0].complete);
	forks_free(&fs);
}

/* With a set_ftrace_filter and funcgraph-irqs on, an interrupt's own lock calls land
 * at the pass's depth; marked in_irq, they must not make passes. */
static void test_irq_lock_in_pass(void)
{
	struct forks fs;
	struct pt_event ev;

	start(&fs);
	ENTRY(0, 8, 0, "dup_mmap", 1 * US);
	ENTRY(0, 8, 1, "copy_page_range", 2 * US);
	LEAF(0, 8, 2, "__pte_alloc", 3 * US, US);
	LEAF(0, 8, 2, "_raw_spin_lock", 4 * US, US);
	LEAF(0, 8, 2, "_raw_spin_lock", 5 * US, US);
	for (int i = 0; i < 3; i++) {
		pt_event_init(&ev, PT_EV_LEAF);
		ev.cpu = 0;
		ev.pid = 8;
		ev.depth = 2;
		ev.func = i < 2 ? "_raw_spin_lock" : "_raw_spin_unlock";
		ev.func_id = fid(ev.func);
		ev.ts_ns = (6 + i) * US;
		ev.dur_ns = US;
		ev.in_irq = true;
		CHECK_EQ(recon_feed(&ev, R), 0);
	}
	LEAF(0, 8, 2, "_raw_spin_unlock", 10 * US, US);
	LEAF(0, 8, 2, "_raw_spin_unlock", 11 * US, US);
	LEAF(0, 8, 2, "__cond_resched", 12 * US, US);
	EXIT(0, 8, 1, "copy_page_range", 14 * US, 12 * US);
	EXIT(0, 8, 0, "dup_mmap", 15 * US, 14 * US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, 1);
	CHECK_EQ(fs.f[0].lock_breaks, 0);
	CHECK_EQ(fs.f[0].max_lock_hold_ns, 8 * US);
	CHECK_EQ(fs.f[0].dup_mmap_ns, 14 * US);
	CHECK_EQ(fs.f[0].kernel_clone_ns, NT);
	forks_free(&fs);
}

/* Locks-level filter (no copy_huge_pmd, no trylock): each huge PMD copy shows
 * as the allocation's resched and unlock, then the PMD locks. No PTE pass, no break. */
static void test_huge_pmd_locks(void)
{
	struct forks fs;
	uint64_t t = 10 * US;

	start(&fs);
	LEAF(0, 12, 0, "schedule", 1 * US, US);
	ENTRY(0, 12, 0, "copy_page_range", 5 * US);
	for (int i = 0; i < 4; i++) {
		LEAF(0, 12, 1, "__cond_resched", t, US); /* pte_alloc_one -> __alloc_pages */
		LEAF(0, 12, 1, "_raw_spin_unlock", t + 2 * US, US); /* pcp trylock/unlock */
		LEAF(0, 12, 1, "_raw_spin_lock", t + 4 * US, US);
		LEAF(0, 12, 1, "_raw_spin_lock", t + 6 * US, US);
		LEAF(0, 12, 1, "_raw_spin_unlock", t + 8 * US, US);
		LEAF(0, 12, 1, "_raw_spin_unlock", t + 10 * US, US);
		t += 12 * US;
	}
	t = pass(12, 1, t, 0, true);  /* then one real PTE pass on a new PMD */
	t = pass(12, 1, t, 0, false); /* the next one resumes, but nothing scheduled */
	EXIT(0, 12, 0, "copy_page_range", t, t - 5 * US);
	fork_event(0, 12, 13, t + US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, 2);
	CHECK_EQ(fs.f[0].lock_breaks, 0);
	CHECK(fs.f[0].complete);
	forks_free(&fs);
}

/* How a kernel shows one PTE pass (docs/kernels.md, the probed full graphs). */
struct kshape {
	const char *map_lock; /* takes the child's lock inside (6.12, 7.2), NULL: 6.1 */
	const char *lock, *unlock;
	bool resched; /* cond_resched() after every pass (voluntary preemption) */
	bool full;    /* whole graph; else a filter of the lock level */
};

static const struct kshape K612 = {"__pte_offset_map_lock", "_raw_spin_lock", "_raw_spin_unlock",
				   true, true};
static const struct kshape K612RT = {"__pte_offset_map_lock", "rt_spin_lock", "rt_spin_unlock",
				     false, true};
static const struct kshape K72 = {"pte_offset_map_lock", "_raw_spin_lock", "_raw_spin_unlock",
				  false, true};
static const struct kshape K61RT_FILTER = {NULL, "rt_spin_lock", "rt_spin_unlock", false, false};

/* A lock call at @d: rt_spin_lock has calls under it in a full graph. */
static uint64_t klock(const struct kshape *k, int pid, int d, uint64_t t)
{
	if (k->full && !strcmp(k->lock, "rt_spin_lock")) {
		ENTRY(0, pid, d, k->lock, t);
		LEAF(0, pid, d + 1, "migrate_disable", t + US / 4, US / 4);
		EXIT(0, pid, d, k->lock, t + US, US);
	} else {
		LEAF(0, pid, d, k->lock, t, US / 2);
	}
	return t + US;
}

/* One pass as kernel @k shows it, children of the container at depth @d; a
 * __pte_alloc first if @alloc (full graph: with the pmd_install lock under it);
 * its cond_resched, where there is one, schedules (100 us) if @sw. */
static uint64_t kpass_sw(const struct kshape *k, int pid, int d, uint64_t t, int ptes, bool alloc,
			 bool sw)
{
	if (alloc && k->full) {
		ENTRY(0, pid, d, "__pte_alloc", t);
		t = klock(k, pid, d + 1, t + US);
		LEAF(0, pid, d + 1, k->unlock, t, US / 2);
		EXIT(0, pid, d, "__pte_alloc", t + US, 3 * US);
		t += 2 * US;
	} else if (alloc) {
		LEAF(0, pid, d, "__pte_alloc", t, US / 2);
		t += US;
	}
	if (k->map_lock && k->full) {
		ENTRY(0, pid, d, k->map_lock, t);
		LEAF(0, pid, d + 1, "__pte_offset_map", t + US / 4, US / 4);
		t = klock(k, pid, d + 1, t + US);
		EXIT(0, pid, d, k->map_lock, t, 2 * US);
		LEAF(0, pid, d, "pte_offset_map_nolock", t + US, US / 2);
		t += 2 * US;
	} else {
		t = klock(k, pid, d, t); /* the lock taken inside, or 6.1's first lock */
	}
	t = klock(k, pid, d, t);
	for (int i = 0; i < ptes; i++, t += US)
		LEAF(0, pid, d, "vm_normal_page", t, US / 2);
	if (k->map_lock && k->full) {
		LEAF(0, pid, d, "preempt_model_full", t, US / 4);
		t += US;
	}
	for (int i = 0; i < 2; i++) {
		LEAF(0, pid, d, k->unlock, t, US / 2);
		t += US;
		if (k->map_lock && k->full) {
			LEAF(0, pid, d, "__rcu_read_unlock", t, US / 4);
			t += US;
		}
	}
	if (k->resched) {
		LEAF(0, pid, d, "__cond_resched", t, sw ? 100 * US : US / 2);
		t += sw ? 101 * US : US;
	}
	return t;
}

static uint64_t kpass(const struct kshape *k, int pid, int d, uint64_t t, int ptes, bool alloc)
{
	return kpass_sw(k, pid, d, t, ptes, alloc, false);
}

/* A full-graph allocation of a page-table level: its lock one level down. */
static uint64_t kalloc_level(const struct kshape *k, int pid, int d, uint64_t t)
{
	ENTRY(0, pid, d, "__pmd_alloc", t);
	t = klock(k, pid, d + 1, t + US);
	LEAF(0, pid, d + 1, k->unlock, t, US / 2);
	EXIT(0, pid, d, "__pmd_alloc", t + US, 3 * US);
	return t + 2 * US;
}

/*
 * A fork on kernel @k: kernel_clone > copy_process > copy_page_range (dup_mmap
 * inlined, as on 6.12), one VMA of two PMDs: a new PMD, a second new PMD whose
 * pass breaks off (@brk: the loop stopped, the locks were let go), then, if
 * @brk, the same PMD resumed.
 */
static void kfork(const struct kshape *k, struct forks *fs, int pid, bool brk)
{
	uint64_t t;

	start(fs);
	LEAF(0, pid, 0, "schedule", 1 * US, US); /* the task was seen before */
	ENTRY(0, pid, 0, "kernel_clone", 10 * US);
	ENTRY(0, pid, 1, "copy_process", 11 * US);
	ENTRY(0, pid, 2, "copy_page_range", 12 * US);
	t = k->full ? kalloc_level(k, pid, 3, 13 * US) : 13 * US;
	t = kpass(k, pid, 3, t, 3, true);
	t = kpass_sw(k, pid, 3, t, 2, true, brk);
	if (brk)
		t = kpass(k, pid, 3, t + 200 * US, 4, false);
	EXIT(0, pid, 2, "copy_page_range", t, t - 12 * US);
	fork_event(0, pid, pid + 1, t + US);
	EXIT(0, pid, 1, "copy_process", t + 2 * US, t + 2 * US - 11 * US);
	EXIT(0, pid, 0, "kernel_clone", t + 3 * US, t + 3 * US - 10 * US);
	finish();
}

/* 6.12, 6.12-rt and 7.2, whole graph, with and without a lock break; 6.1-rt
 * under a lock-level filter: the same passes and breaks, whichever function
 * takes the lock and whether cond_resched() is called. */
static void test_kernel_shapes(void)
{
	const struct kshape *ks[] = {&K612, &K612RT, &K72, &K61RT_FILTER};

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		for (int brk = 0; brk < 2; brk++) {
			struct forks fs;

			kfork(ks[i], &fs, 20 + (int)i * 4, brk);
			CHECK_EQ(fs.n, 1);
			if (fs.n != 1)
				continue;
			CHECK(fs.f[0].complete);
			CHECK_EQ(fs.f[0].child_pid, 21 + (int)i * 4);
			CHECK_EQ(fs.f[0].pte_passes, 2 + brk);
			CHECK_EQ(fs.f[0].lock_breaks, brk);
			CHECK_EQ(fs.f[0].ptes, 5 + 4 * brk);
			CHECK_EQ(fs.f[0].vmas, 1);
			CHECK_EQ(fs.f[0].dup_mmap_ns, NT);
			CHECK(fs.f[0].nr_pass >= 2 && fs.f[0].pass[0].new_pmd &&
			      fs.f[0].pass[1].new_pmd);
			CHECK_EQ(fs.f[0].pass[0].ptes, 3);
			CHECK(fs.f[0].max_lock_hold_ns != NT && fs.f[0].max_lock_hold_ns > 0);
			forks_free(&fs);
		}
	}
}

/* A lock-level filter on an rt kernel: the untraced page-table allocations'
 * locks (one lock, one unlock) and the page allocator's lone unlock sit among
 * the passes; they are not passes, and no break is invented. */
static void test_rt_filter_foreign_locks(void)
{
	const struct kshape *k = &K61RT_FILTER;
	struct forks fs;
	uint64_t t = 10 * US;

	start(&fs);
	LEAF(0, 30, 0, "schedule", 1 * US, US);
	ENTRY(0, 30, 0, "copy_page_range", 5 * US);
	LEAF(0, 30, 1, "rt_spin_unlock", t, US);	/* pcp trylock/unlock under __pmd_alloc */
	LEAF(0, 30, 1, "rt_spin_lock", t + 2 * US, US); /* __pmd_alloc's page_table_lock */
	LEAF(0, 30, 1, "rt_spin_unlock", t + 4 * US, US);
	t = kpass(k, 30, 1, t + 6 * US, 2, true);
	LEAF(0, 30, 1, "rt_spin_lock", t, US); /* the next PMD level's allocation */
	LEAF(0, 30, 1, "rt_spin_unlock", t + 2 * US, US);
	t = kpass(k, 30, 1, t + 4 * US, 2, true);
	EXIT(0, 30, 0, "copy_page_range", t, t - 5 * US);
	fork_event(0, 30, 31, t + US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, 2);
	CHECK_EQ(fs.f[0].lock_breaks, 0);
	CHECK(fs.f[0].complete);
	forks_free(&fs);
}

/* A filter with the lock but no unlock, and no cond_resched: passes cannot be
 * told from other lock calls, so they are null, never a count that looks whole. */
static void test_no_unlock_traced(void)
{
	struct forks fs;
	uint64_t t = 10 * US;

	start(&fs);
	LEAF(0, 40, 0, "schedule", 1 * US, US);
	ENTRY(0, 40, 0, "copy_page_range", 5 * US);
	for (int i = 0; i < 3; i++, t += 10 * US) {
		LEAF(0, 40, 1, "__pte_alloc", t, US);
		LEAF(0, 40, 1, "rt_spin_lock", t + 2 * US, US);
		LEAF(0, 40, 1, "rt_spin_lock", t + 4 * US, US);
	}
	EXIT(0, 40, 0, "copy_page_range", t, t - 5 * US);
	fork_event(0, 40, 41, t + US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, PT_NULL);
	CHECK_EQ(fs.f[0].lock_breaks, PT_NULL);
	forks_free(&fs);
}

/* Live on an rt kernel at section detail (caps from the hooked functions: no
 * __pte_offset_map_lock, no cond_resched): passes and breaks are known. */
static void test_rt_live_caps(void)
{
	struct forks fs;
	struct recon_opts o = {.on_fork = keep, .ctx = &fs, .caps_known = true};

	o.caps = PT_CAP(PT_ROLE_KERNEL_CLONE) | PT_CAP(PT_ROLE_COPY_PROCESS) |
		 PT_CAP(PT_ROLE_COPY_PAGE_RANGE) | PT_CAP(PT_ROLE_LOCK) | PT_CAP(PT_ROLE_UNLOCK) |
		 PT_CAP(PT_ROLE_PTE_ALLOC) | PT_CAP_TIMES | PT_CAP_FORK_EVENT;
	memset(&fs, 0, sizeof(fs));
	CHECK_EQ(recon_new(&o, &R), 0);
	LEAF(0, 50, 0, "schedule", 1 * US, US);
	ENTRY(0, 50, 0, "kernel_clone", 10 * US);
	ENTRY(0, 50, 1, "copy_process", 11 * US);
	ENTRY(0, 50, 2, "copy_page_range", 12 * US);
	uint64_t t = kpass(&K61RT_FILTER, 50, 3, 13 * US, 0, true);
	t = kpass(&K61RT_FILTER, 50, 3, t + 100 * US, 0, false);
	EXIT(0, 50, 2, "copy_page_range", t, t - 12 * US);
	fork_event(0, 50, 51, t + US);
	EXIT(0, 50, 1, "copy_process", t + 2 * US, t + 2 * US - 11 * US);
	EXIT(0, 50, 0, "kernel_clone", t + 3 * US, t + 3 * US - 10 * US);
	CHECK_EQ(fs.n, 1); /* handed over as soon as it ended */
	finish();
	CHECK_EQ(fs.f[0].pte_passes, 2);
	CHECK_EQ(fs.f[0].lock_breaks, 1);
	CHECK_EQ(fs.f[0].ptes, PT_NULL);
	forks_free(&fs);
}

/* The same filter on 7.2 (lazy preemption: no cond_resched() ends a pass):
 * the allocation's lone unlock follows the previous huge PMD copy's unlocks
 * at once; it must not join that copy, or the next copy looks like a pass. */
static void test_huge_pmd_locks_lazy(void)
{
	static const struct kshape k72f = {NULL, "_raw_spin_lock", "_raw_spin_unlock", false,
					   false};
	struct forks fs;
	uint64_t t = 10 * US;

	start(&fs);
	LEAF(0, 14, 0, "schedule", 1 * US, US);
	ENTRY(0, 14, 0, "copy_page_range", 5 * US);
	for (int i = 0; i < 4; i++) {
		LEAF(0, 14, 1, "_raw_spin_unlock", t, US); /* pcp trylock/unlock */
		LEAF(0, 14, 1, "_raw_spin_lock", t + 2 * US, US);
		LEAF(0, 14, 1, "_raw_spin_lock", t + 4 * US, US);
		LEAF(0, 14, 1, "_raw_spin_unlock", t + 6 * US, US);
		LEAF(0, 14, 1, "_raw_spin_unlock", t + 8 * US, US);
		t += 10 * US;
	}
	t = kpass(&k72f, 14, 1, t, 0, true);
	t = kpass(&k72f, 14, 1, t, 0, true);
	EXIT(0, 14, 0, "copy_page_range", t, t - 5 * US);
	fork_event(0, 14, 15, t + US);
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].pte_passes, 2);
	CHECK_EQ(fs.f[0].lock_breaks, 0);
	forks_free(&fs);
}

/* A kernel whose copy loop takes its PTE locks through a function no rule
 * knows: the PTEs are counted, but the passes are not read as zero: the fork
 * says the loop is unknown, pass figures are null, it is not complete. */
static void test_unknown_loop(void)
{
	struct forks fs;
	uint64_t t = 10 * US;

	start(&fs);
	LEAF(0, 60, 0, "schedule", 1 * US, US);
	ENTRY(0, 60, 0, "kernel_clone", 5 * US);
	ENTRY(0, 60, 1, "copy_page_range", 6 * US);
	for (int p = 0; p < 2; p++) {
		LEAF(0, 60, 2, "__pte_alloc", t, US);
		LEAF(0, 60, 2, "pte_lock_both", t + US, US);
		for (int i = 0; i < 5; i++)
			LEAF(0, 60, 2, "vm_normal_page", t + (2 + i) * US, US / 2);
		LEAF(0, 60, 2, "_raw_spin_unlock", t + 8 * US, US / 2);
		LEAF(0, 60, 2, "__cond_resched", t + 9 * US, US / 2);
		t += 10 * US;
	}
	EXIT(0, 60, 1, "copy_page_range", t, t - 6 * US);
	fork_event(0, 60, 61, t + US);
	EXIT(0, 60, 0, "kernel_clone", t + 2 * US, t - 3 * US);
	LEAF(0, 60, 0, "_raw_spin_lock", t + 5 * US, US); /* the lock is traced, elsewhere */
	finish();
	CHECK_EQ(fs.n, 1);
	CHECK_EQ(fs.f[0].ptes, 10);
	CHECK_EQ(fs.f[0].pte_passes, PT_NULL);
	CHECK_EQ(fs.f[0].lock_breaks, PT_NULL);
	CHECK(fs.f[0].flags & PT_FORK_UNKNOWN_LOOP);
	CHECK(!fs.f[0].complete);
	forks_free(&fs);
}

static void test_roles(void)
{
	CHECK_EQ(pt_role_of("kernel_clone"), PT_ROLE_KERNEL_CLONE);
	CHECK_EQ(pt_role_of("do_fork"), PT_ROLE_KERNEL_CLONE);
	CHECK_EQ(pt_role_of("copy_page_range.isra.0"), PT_ROLE_COPY_PAGE_RANGE);
	CHECK_EQ(pt_role_of("_raw_spin_lock_irqsave"), PT_ROLE_OTHER);
	CHECK_EQ(pt_role_of("rt_spin_unlock"), PT_ROLE_UNLOCK);
	CHECK_EQ(pt_role_of(NULL), PT_ROLE_OTHER);
	CHECK_EQ(pt_role_of("__pte_offset_map_lock"), PT_ROLE_LOCK_MAP);
	CHECK_EQ(pt_role_of("pte_offset_map_lock"), PT_ROLE_LOCK_MAP);
	CHECK_EQ(pt_role_of("pte_offset_map_nolock"), PT_ROLE_OTHER);
	CHECK(!strcmp(pt_role_superseded_by("_raw_spin_lock"), "rt_spin_lock"));
	CHECK(!pt_role_superseded_by("rt_spin_lock"));
}

/* The live filter's names by detail level: the roots first, each level a
 * superset of the one below, every name with a role. */
static void test_role_names(void)
{
	const char *names[64];
	size_t fork = pt_role_names(PT_DETAIL_FORK, names, 64);
	size_t section = pt_role_names(PT_DETAIL_SECTION, NULL, 0);
	size_t pte = pt_role_names(PT_DETAIL_PTE, names, 64);
	bool has_vm_normal_page = false;

	CHECK_EQ(fork, 8);
	CHECK(section > fork && pte > section && pte <= 64);
	CHECK(!strcmp(names[0], "kernel_clone"));
	for (size_t i = 0; i < pte; i++) {
		CHECK(pt_role_of(names[i]) != PT_ROLE_OTHER);
		CHECK(pt_role_of(names[i]) != PT_ROLE_LOCK_MAP); /* never hooked live */
		has_vm_normal_page |= !strcmp(names[i], "vm_normal_page");
	}
	CHECK(has_vm_normal_page);
	pt_role_names(PT_DETAIL_SECTION, names, 64);
	for (size_t i = 0; i < section; i++)
		CHECK(pt_role_of(names[i]) != PT_ROLE_PTE);
}

int main(void)
{
	test_roles();
	test_role_names();
	test_full_fork();
	test_old_names();
	test_cpte_function();
	test_orphan_exit();
	test_lost();
	test_irq_before_exit();
	test_migration_no_pid();
	test_cpr_runs();
	test_event_only();
	test_kinds();
	test_cut_at_end();
	test_two_tasks();
	test_depth_limited();
	test_irq_lock_in_pass();
	test_huge_pmd_locks();
	test_switch_window();
	test_task_counters();
	test_kernel_shapes();
	test_rt_filter_foreign_locks();
	test_no_unlock_traced();
	test_rt_live_caps();
	test_huge_pmd_locks_lazy();
	test_split_fork();
	test_unknown_loop();
	test_call_sites();
	TEST_DONE();
}
