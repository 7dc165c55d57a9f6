/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the call reconstruction and fork derivation (recon.c), fed
 * literal event sequences, one per edge case of real recordings.
 */
#include <stdlib.h>
#include <string.h>

#include "recon.h"
#include "test.h"

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
	t = pass(10, 4, 1006 * US, 3, true);	/* new PMD */
	t = pass_sw(10, 4, t, 2, true, true);	/* new PMD; ends scheduling away */
	t = pass(10, 4, t, 4, false);		/* resumed: a lock break */
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
	LEAF(0, 7, 2, "_raw_spin_lock", 57 * US, US); /* same call: resumed */
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
	t = pass(12, 1, t, 0, true); /* then one real PTE pass on a new PMD */
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

static void test_roles(void)
{
	CHECK_EQ(pt_role_of("kernel_clone"), PT_ROLE_KERNEL_CLONE);
	CHECK_EQ(pt_role_of("do_fork"), PT_ROLE_KERNEL_CLONE);
	CHECK_EQ(pt_role_of("copy_page_range.isra.0"), PT_ROLE_COPY_PAGE_RANGE);
	CHECK_EQ(pt_role_of("_raw_spin_lock_irqsave"), PT_ROLE_OTHER);
	CHECK_EQ(pt_role_of("rt_spin_unlock"), PT_ROLE_UNLOCK);
	CHECK_EQ(pt_role_of(NULL), PT_ROLE_OTHER);
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
	test_cut_at_end();
	test_two_tasks();
	test_depth_limited();
	test_irq_lock_in_pass();
	test_huge_pmd_locks();
	test_switch_window();
	TEST_DONE();
}
