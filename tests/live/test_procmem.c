/* SPDX-License-Identifier: MIT */
/*
 * The parent's memory from /proc (daemon/procmem.c): parsing against a fake
 * /proc tree with literal status, maps and smaps_rollup text (values,
 * missing fields, a reused pid, a child that exec'd); this process's own
 * /proc/self against its status read independently; and the budget and the
 * per-pid reuse of pd_procmem_fill.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakefs.h"
#include "procmem.h"
#include "check.h"

static char root[256];

static void mkpid(int pid)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%d", root, pid);
	mkdir(path, 0755);
}

static const char status_redis[] = "Name:\tredis-server\nUmask:\t0022\nState:\tS (sleeping)\n"
				   "VmRSS:\t  1052672 kB\nRssAnon:\t  1048576 kB\n"
				   "RssFile:\t     4000 kB\nRssShmem:\t       96 kB\n"
				   "VmPTE:\t     2080 kB\nThreads:\t5\n";

static void fake_tree(void)
{
	snprintf(root, sizeof(root), "/tmp/ptescope-procmem-%d", (int)getpid());
	mkdir(root, 0755);
	mkpid(100);
	put(root, "100/status", status_redis);
	put(root, "100/maps", "55d0-55d1 r--p 0 08:01 1 /usr/bin/redis-server\n"
			"55d1-55d2 r-xp 0 08:01 1 /usr/bin/redis-server\n"
			"7f00-7f80 rw-p 0 00:00 0\n");
	put(root, "100/smaps_rollup", "55d0-7fff ---p 00000000 00:00 0 [rollup]\nRss:  1052672 kB\n"
				"AnonHugePages:    40960 kB\nShmemPmdMapped:        0 kB\n");
	mkpid(101); /* its child, exec'd into sh */
	put(root, "101/comm", "sh\n");
	mkpid(102); /* a child that did not exec */
	put(root, "102/comm", "redis-server\n");
	mkpid(200); /* an old kernel: no RssAnon/VmPTE, no smaps_rollup */
	put(root, "200/status", "Name:\tbash\nVmRSS:\t 3000 kB\n");
	put(root, "200/maps", "");
}

static void test_fake(void)
{
	struct pt_parent_mem m;

	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", 101, true, 1LL << 40, 0, &m), 0);
	CHECK_EQ(m.v[PT_MEM_RSS_ANON], 1048576LL * 1024);
	CHECK_EQ(m.v[PT_MEM_RSS_FILE], 4000LL * 1024);
	CHECK_EQ(m.v[PT_MEM_RSS_SHMEM], 96LL * 1024);
	CHECK_EQ(m.v[PT_MEM_PTE], 2080LL * 1024);
	CHECK_EQ(m.v[PT_MEM_MAP_COUNT], 3);
	CHECK_EQ(m.v[PT_MEM_ANON_HUGE], 40960LL * 1024);
	CHECK(pt_mem_has(&m, PT_MEM_CHILD_EXEC) && m.v[PT_MEM_CHILD_EXEC] == 1);
	CHECK_EQ(pt_mem_rss_bytes(&m), (1048576LL + 4000 + 96) * 1024);
	CHECK_EQ(m.have, (1u << PT_MEM_COUNT) - 1);

	/* a child still running the parent's program; maps and smaps not asked */
	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", 102, false, 0, 0, &m), 0);
	CHECK(pt_mem_has(&m, PT_MEM_CHILD_EXEC) && m.v[PT_MEM_CHILD_EXEC] == 0);
	CHECK(!pt_mem_has(&m, PT_MEM_MAP_COUNT) && !pt_mem_has(&m, PT_MEM_ANON_HUGE));
	/* a child gone: unknown, not "did not exec" */
	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", 999, false, 0, 0, &m), 0);
	CHECK(!pt_mem_has(&m, PT_MEM_CHILD_EXEC));

	/* the pid is someone else now: nothing */
	CHECK_EQ(pd_procmem_read(root, 100, "postgres", -1, true, 1LL << 40, 0, &m), -ESRCH);
	CHECK_EQ(m.have, 0);
	/* gone */
	CHECK_EQ(pd_procmem_read(root, 4242, "x", -1, true, 1LL << 40, 0, &m), -ENOENT);
	CHECK_EQ(m.have, 0);
	/* an anonymous RSS over the cap: no smaps_rollup walk, THP unknown */
	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", -1, true, 1LL << 29, 0, &m), 0);
	CHECK(!pt_mem_has(&m, PT_MEM_ANON_HUGE) && pt_mem_has(&m, PT_MEM_MAP_COUNT));
	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", -1, true, 1LL << 31, 0, &m), 0);
	CHECK(pt_mem_has(&m, PT_MEM_ANON_HUGE));
	/* fields missing: only what is there */
	CHECK_EQ(pd_procmem_read(root, 200, "bash", -1, true, 1LL << 40, 0, &m), 0);
	CHECK_EQ(m.have, 1u << PT_MEM_MAP_COUNT);
	CHECK_EQ(m.v[PT_MEM_MAP_COUNT], 0);
	CHECK_EQ(pt_mem_rss_bytes(&m), -1);
}

/* The RssAnon of /proc/self/status, parsed naively. */
static long long self_kb(const char *key)
{
	char line[256];
	long long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = atoll(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return v;
}

static void test_self(void)
{
	struct pt_parent_mem m;
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	long long pte_kb = self_kb("VmPTE");

	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	CHECK_EQ(pd_procmem_read("/proc", (int)getpid(), comm, -1, true, 1LL << 40, 0, &m), 0);
	CHECK(pt_mem_has(&m, PT_MEM_RSS_ANON) && m.v[PT_MEM_RSS_ANON] > 0);
	CHECK(pt_mem_has(&m, PT_MEM_PTE));
	if (pte_kb >= 0)
		CHECK_EQ(m.v[PT_MEM_PTE], pte_kb * 1024);
	/* a C program maps at least its binary, libc, the stack, vdso */
	CHECK(pt_mem_has(&m, PT_MEM_MAP_COUNT) && m.v[PT_MEM_MAP_COUNT] >= 5);
}

static void test_budget(void)
{
	struct pd_procmem_opts o = {.proc_root = root, .max_reads_per_s = 2};
	struct pd_procmem *p;
	struct pt_fork f = {.parent_pid = 100, .child_pid = 101, .parent_comm = "redis-server"};
	uint64_t t = 5000000000ull, reads, skipped;

	CHECK_EQ(pd_procmem_new(&o, &p), 0);
	pd_procmem_fill(p, &f, NULL, t, 0);
	CHECK_EQ(f.mem.v[PT_MEM_PTE], 2080LL * 1024);
	CHECK(pt_mem_has(&f.mem, PT_MEM_CHILD_EXEC));
	/* the same pid within a second: the reading is reused (without the child's exec) */
	pd_procmem_fill(p, &f, NULL, t + 1000, 0);
	CHECK_EQ(f.mem.v[PT_MEM_PTE], 2080LL * 1024);
	CHECK(!pt_mem_has(&f.mem, PT_MEM_CHILD_EXEC));
	pd_procmem_counts(p, &reads, &skipped);
	CHECK_EQ(reads, 1);
	/* other pids: two per second, then none */
	f.parent_pid = 200;
	strcpy(f.parent_comm, "bash");
	pd_procmem_fill(p, &f, NULL, t + 2000, 0);
	CHECK(f.mem.have);
	f.parent_pid = 4242;
	pd_procmem_fill(p, &f, NULL, t + 3000, 0); /* the budget (2/s) is spent */
	CHECK_EQ(f.mem.have, 0);
	f.parent_pid = 200;
	pd_procmem_fill(p, &f, NULL, t + 4000, 0); /* cached still */
	CHECK(f.mem.have);
	f.parent_pid = 100;
	strcpy(f.parent_comm, "redis-server");
	pd_procmem_fill(p, &f, NULL, t + 1100000000ull, 0); /* reuse expired, budget back */
	CHECK_EQ(f.mem.v[PT_MEM_RSS_ANON], 1048576LL * 1024);
	f.parent_pid = 4242;
	pd_procmem_fill(p, &f, NULL, t + 1100000100ull, 0); /* gone: a reading, nothing */
	CHECK_EQ(f.mem.have, 0);
	f.parent_pid = 200;
	strcpy(f.parent_comm, "bash");
	pd_procmem_fill(p, &f, NULL, t + 1100000200ull, 0); /* reuse expired, budget spent */
	CHECK_EQ(f.mem.have, 0);
	pd_procmem_counts(p, &reads, &skipped);
	CHECK_EQ(reads, 4);
	CHECK_EQ(skipped, 2);
	pd_procmem_free(p);
	pd_procmem_free(NULL);
}

/* A deadline already passed: the cheap status figures, no VMA count, no smaps_rollup walk. */
static void test_deadline(void)
{
	struct pt_parent_mem m;

	CHECK_EQ(pd_procmem_read(root, 100, "redis-server", 101, true, 1LL << 40, 1, &m), 0);
	CHECK_EQ(m.v[PT_MEM_RSS_ANON], 1048576LL * 1024);
	CHECK(pt_mem_has(&m, PT_MEM_PTE));
	CHECK(!pt_mem_has(&m, PT_MEM_MAP_COUNT));
	CHECK(!pt_mem_has(&m, PT_MEM_ANON_HUGE));
}

/* The time budget: a reading that took longer than the budget holds the next ones off. */
static void test_time_budget(void)
{
	struct pd_procmem_opts o = {.proc_root = root, .max_read_ns_per_s = 1};
	struct pd_procmem *p;
	struct pt_fork f = {.parent_pid = 100, .child_pid = -1, .parent_comm = "redis-server"};
	uint64_t t = 5000000000ull, reads, skipped;

	CHECK_EQ(pd_procmem_new(&o, &p), 0);
	pd_procmem_fill(p, &f, NULL, t, 0);
	CHECK(f.mem.have);
	f.parent_pid = 200;
	strcpy(f.parent_comm, "bash");
	pd_procmem_fill(p, &f, NULL, t + 1000000, 0); /* 1 ns a second: spent for a long while */
	CHECK_EQ(f.mem.have, 0);
	pd_procmem_counts(p, &reads, &skipped);
	CHECK_EQ(reads, 1);
	CHECK_EQ(skipped, 1);
	pd_procmem_free(p);
}

/* The capture's own reading of the parent (the probe at dup_mmap): it stands
 * over /proc's, and with it status and maps are not read again. */
static void test_probed(void)
{
	struct pd_procmem_opts o = {.proc_root = root, .max_reads_per_s = 2};
	struct pd_procmem *p;
	struct pt_fork f = {.parent_pid = 100, .child_pid = 101, .parent_comm = "redis-server"};
	struct pt_parent_mem probe = {0};
	const enum pt_mem_field mine[] = {PT_MEM_RSS_ANON, PT_MEM_RSS_FILE, PT_MEM_RSS_SHMEM,
					  PT_MEM_PTE, PT_MEM_MAP_COUNT};
	uint64_t t = 5000000000ull, reads, skipped;
	char path[512];

	for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++) {
		probe.v[mine[i]] = 4096 * (int64_t)(i + 1);
		probe.have |= 1u << mine[i];
	}
	probe.v[PT_MEM_MAP_COUNT] = 42;
	CHECK_EQ(pd_procmem_new(&o, &p), 0);
	/* a parent first seen: smaps_rollup is due (status read with it), the
	 * probe's figures stand over status's */
	pd_procmem_fill(p, &f, &probe, t, 0);
	CHECK_EQ(f.mem.v[PT_MEM_RSS_ANON], 4096);
	CHECK_EQ(f.mem.v[PT_MEM_PTE], 4 * 4096);
	CHECK_EQ(f.mem.v[PT_MEM_MAP_COUNT], 42);
	CHECK_EQ(f.mem.v[PT_MEM_ANON_HUGE], 40960LL * 1024);
	CHECK(pt_mem_has(&f.mem, PT_MEM_CHILD_EXEC) && f.mem.v[PT_MEM_CHILD_EXEC] == 1);
	/* a second on, smaps_rollup not due: only the child's comm is read (status
	 * and maps gone from the fake tree: still a whole reading) */
	snprintf(path, sizeof(path), "%s/100/status", root);
	CHECK_EQ(rename(path, "/tmp/ptescope-procmem-status-away"), 0);
	pd_procmem_fill(p, &f, &probe, t + 1100000000ull, 0);
	CHECK_EQ(f.mem.v[PT_MEM_MAP_COUNT], 42);
	CHECK_EQ(f.mem.v[PT_MEM_ANON_HUGE], 40960LL * 1024); /* the last minute's */
	CHECK(pt_mem_has(&f.mem, PT_MEM_CHILD_EXEC));
	CHECK_EQ(f.mem.have, (1u << PT_MEM_COUNT) - 1);
	CHECK_EQ(rename("/tmp/ptescope-procmem-status-away", path), 0);
	/* without the probe, the same fork reads status and maps (cached: reused) */
	pd_procmem_fill(p, &f, NULL, t + 1100000100ull, 0);
	CHECK_EQ(f.mem.v[PT_MEM_MAP_COUNT], 42); /* the reading a moment ago, reused */
	/* a parent gone, or the budget spent: the probe's figures alone */
	f.parent_pid = 4242;
	pd_procmem_fill(p, &f, &probe, t + 1100000200ull, 0);
	CHECK_EQ(f.mem.have, probe.have);
	CHECK_EQ(f.mem.v[PT_MEM_MAP_COUNT], 42);
	f.parent_pid = 200;
	strcpy(f.parent_comm, "bash");
	pd_procmem_fill(p, &f, &probe, t + 1100000300ull, 0);
	CHECK_EQ(f.mem.have, probe.have);
	pd_procmem_counts(p, &reads, &skipped);
	CHECK_EQ(reads, 3);
	CHECK_EQ(skipped, 1);
	pd_procmem_free(p);
}

int main(void)
{
	char cmd[512];

	fake_tree();
	test_fake();
	test_self();
	test_budget();
	test_deadline();
	test_time_budget();
	test_probed();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", root);
	TEST_DONE();
}
