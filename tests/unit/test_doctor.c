/* SPDX-License-Identifier: MIT */
/*
 * The doctor (analyzer/doctor.c, doctor_rules.c) on literal forks: each rule
 * fires on a process built to match it and stays quiet or cannot judge on
 * one built not to; grouping by process, the slow threshold, the slowest
 * fork ids, the time split, and the JSON shape. The real recordings are
 * tests/replay/doctor_fixtures.py's.
 */
#include <math.h>
#include <string.h>

#include "doctor.h"
#include "check.h"

#define MS 1000000ull
#define MIB (1024LL * 1024)

static struct pt_fork mk(const char *comm, int pid, uint64_t total_ns)
{
	struct pt_fork f;

	memset(&f, 0, sizeof(f));
	snprintf(f.parent_comm, sizeof(f.parent_comm), "%s", comm);
	f.parent_pid = pid;
	f.child_pid = pid + 1;
	f.ts_ns = f.max_lock_hold_ns = f.copy_offcpu_ns = PT_NO_TIME;
	f.kernel_clone_ns = total_ns;
	f.copy_process_ns = total_ns * 9 / 10;
	f.dup_mmap_ns = total_ns * 8 / 10;
	f.copy_page_range_ns = total_ns * 2 / 10;
	f.vmas = 20;
	f.ptes = f.pte_passes = f.lock_breaks = f.copy_resched = PT_NULL;
	f.complete = true;
	f.kind = PT_KIND_FORK;
	return f;
}

static void set_mem(struct pt_fork *f, enum pt_mem_field k, int64_t v)
{
	f->mem.v[k] = v;
	f->mem.have |= 1u << k;
}

static void set_rss(struct pt_fork *f, int64_t anon)
{
	set_mem(f, PT_MEM_RSS_ANON, anon);
	set_mem(f, PT_MEM_RSS_FILE, 0);
	set_mem(f, PT_MEM_RSS_SHMEM, 0);
}

static int rule(const char *id)
{
	for (size_t i = 0; i < pt_doctor_nr_rules; i++)
		if (!strcmp(pt_doctor_rules[i].id, id))
			return (int)i;
	return -1;
}

static const struct pt_doctor_proc *proc(const struct pt_doctor_report *r, const char *comm)
{
	for (size_t i = 0; i < r->nr_procs; i++)
		if (!strcmp(r->procs[i].comm, comm))
			return &r->procs[i];
	return NULL;
}

static enum pt_verdict verdict(const struct pt_doctor_report *r, const char *comm, const char *id)
{
	const struct pt_doctor_proc *p = proc(r, comm);
	int k = rule(id);

	if (!p || k < 0) {
		fprintf(stderr, "no process %s or rule %s\n", comm, id);
		test_failures++;
		return PT_VERDICT_UNKNOWN;
	}
	return p->verdict[k];
}

#define NF 64

int main(void)
{
	struct pt_fork f[NF];
	int64_t ids[NF];
	struct pt_doctor_report r;
	size_t n = 0;

	/* big: a 2 GiB process whose page-table copy dominates, on a slow VM */
	for (int i = 0; i < 3; i++) {
		f[n] = mk("big", 10, 400 * MS + (uint64_t)i * MS);
		f[n].copy_page_range_ns = 300 * MS;
		f[n].ptes = 500000;
		set_rss(&f[n], 2048 * MIB);
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* busy: preempted 40% of the fork while copying, a small process */
	for (int i = 0; i < 3; i++) {
		f[n] = mk("busy", 20, 10 * MS);
		f[n].copy_page_range_ns = 8 * MS;
		f[n].copy_offcpu_ns = 4 * MS;
		f[n].copy_resched = 3;
		set_rss(&f[n], 8 * MIB);
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* spawner: every child exec'd */
	for (int i = 0; i < 4; i++) {
		f[n] = mk("spawner", 30, 2 * MS);
		set_mem(&f[n], PT_MEM_CHILD_EXEC, 1);
		set_mem(&f[n], PT_MEM_MAP_COUNT, 5000);
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* mixed: children that mostly did not exec; few VMAs; fast per GB */
	for (int i = 0; i < 4; i++) {
		f[n] = mk("mixed", 40, 5 * MS);
		set_mem(&f[n], PT_MEM_CHILD_EXEC, i == 0);
		set_mem(&f[n], PT_MEM_MAP_COUNT, 50);
		set_rss(&f[n], 1024 * MIB); /* 1 GiB in 5 ms: 200 GB/s */
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* vforker: no VMA copied */
	for (int i = 0; i < 2; i++) {
		f[n] = mk("vforker", 50, 2 * MS);
		f[n].vmas = 0;
		f[n].dup_mmap_ns = f[n].copy_page_range_ns = PT_NO_TIME;
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* fast: under the threshold, never examined; and an incomplete slow fork */
	f[n] = mk("fast", 60, MS / 2);
	ids[n] = 1000 + (int64_t)n;
	n++;
	f[n] = mk("fast", 60, 50 * MS);
	f[n].complete = false;
	ids[n] = 1000 + (int64_t)n;
	n++;
	/* reg: a 128 MiB program forking in 1.25 ms (10 ms per GiB) from four processes, and one
	 * of its processes at 5 ms (40 ms per GiB: over 3x) */
	for (int i = 0; i < 5; i++) {
		f[n] = mk("reg", 70 + i, i == 4 ? 5 * MS : 5 * MS / 4);
		set_rss(&f[n], 128 * MIB);
		ids[n] = 1000 + (int64_t)n;
		n++;
	}
	/* the same comm in another process is another process */
	f[n] = mk("big", 11, 3 * MS);
	ids[n] = 1000 + (int64_t)n;
	n++;

	CHECK_EQ(pt_doctor_run(f, ids, n, NULL, &r), 0);
	CHECK_EQ(r.processes, 12);
	CHECK_EQ(r.nr_procs, 11); /* fast is under 1 ms */
	CHECK(!proc(&r, "fast"));
	CHECK(!strcmp(r.procs[0].comm, "big") && r.procs[0].pid == 10); /* slowest first */
	CHECK_EQ(r.procs[0].nr_slowest, 3);
	CHECK_EQ(r.procs[0].slowest[0], 1002);
	CHECK_EQ(r.procs[0].slowest[2], 1000);
	CHECK_EQ(r.procs[0].dominant, PT_COMP_PTE_COPY);
	CHECK(fabs(r.procs[0].share[PT_COMP_PTE_COPY] - 0.75) < 0.01);
	CHECK(isnan(r.procs[0].share[PT_COMP_OFFCPU]));

	CHECK_EQ(verdict(&r, "big", "page_tables_huge_pages"), PT_VERDICT_FIRES);
	CHECK_EQ(verdict(&r, "big", "hypervisor_cost"), PT_VERDICT_FIRES); /* 2 GiB in 0.4 s */
	CHECK_EQ(verdict(&r, "big", "cpu_contention"), PT_VERDICT_UNKNOWN);
	CHECK_EQ(verdict(&r, "big", "fork_then_exec"), PT_VERDICT_UNKNOWN);
	CHECK_EQ(verdict(&r, "big", "many_vmas"), PT_VERDICT_QUIET);

	CHECK_EQ(verdict(&r, "busy", "cpu_contention"), PT_VERDICT_FIRES);
	CHECK_EQ(verdict(&r, "busy", "page_tables_huge_pages"), PT_VERDICT_QUIET); /* 8 MiB */
	CHECK_EQ(verdict(&r, "busy", "hypervisor_cost"), PT_VERDICT_UNKNOWN);	   /* small */
	CHECK_EQ(proc(&r, "busy")->dominant, PT_COMP_PTE_COPY);
	CHECK(fabs(proc(&r, "busy")->share[PT_COMP_OFFCPU] - 0.4) < 0.01);

	CHECK_EQ(verdict(&r, "spawner", "fork_then_exec"), PT_VERDICT_FIRES);
	CHECK_EQ(verdict(&r, "spawner", "many_vmas"), PT_VERDICT_FIRES);
	CHECK_EQ(verdict(&r, "spawner", "page_tables_huge_pages"), PT_VERDICT_QUIET); /* 20% */

	CHECK_EQ(verdict(&r, "mixed", "fork_then_exec"), PT_VERDICT_QUIET);
	CHECK_EQ(verdict(&r, "mixed", "many_vmas"), PT_VERDICT_QUIET);
	CHECK_EQ(verdict(&r, "mixed", "hypervisor_cost"), PT_VERDICT_QUIET);

	CHECK_EQ(verdict(&r, "vforker", "fork_then_exec"), PT_VERDICT_QUIET);
	CHECK_EQ(verdict(&r, "vforker", "page_tables_huge_pages"), PT_VERDICT_UNKNOWN);

	{
		const struct pt_doctor_proc *reg = NULL, *ok = NULL;

		for (size_t i = 0; i < r.nr_procs; i++)
			if (!strcmp(r.procs[i].comm, "reg") && r.procs[i].pid == 74)
				reg = &r.procs[i];
			else if (!strcmp(r.procs[i].comm, "reg") && r.procs[i].pid == 70)
				ok = &r.procs[i];
		CHECK(reg && ok);
		if (reg && ok) {
			CHECK_EQ(reg->baseline_kind, PT_BASELINE_RSS);
			CHECK(fabs(reg->baseline_ms_per_gib - 10) < 1e-6);
			CHECK_EQ(reg->baseline_forks, 5);
			CHECK_EQ(reg->verdict[rule("cost_regression")], PT_VERDICT_FIRES);
			CHECK_EQ(reg->nr_regression_ids, 1);
			CHECK_EQ(ok->verdict[rule("cost_regression")], PT_VERDICT_QUIET);
		}
		/* big has 3 forks with RSS: no baseline */
		CHECK_EQ(verdict(&r, "big", "cost_regression"), PT_VERDICT_UNKNOWN);
	}
	{
		json_t *j = pt_doctor_json(&r), *p0, *fd;

		CHECK(j != NULL);
		p0 = json_array_get(json_object_get(j, "slow_processes"), 0);
		CHECK(!strcmp(json_string_value(json_object_get(p0, "comm")), "big"));
		CHECK(!strcmp(json_string_value(json_object_get(j, "fork_ids")), "store"));
		fd =
		    json_array_get(json_object_get(p0, "findings"), rule("page_tables_huge_pages"));
		CHECK(!strcmp(json_string_value(json_object_get(fd, "verdict")), "fires") &&
		      json_string_value(json_object_get(fd, "advice")));
		fd = json_array_get(json_object_get(p0, "findings"), rule("many_vmas"));
		CHECK(json_is_null(json_object_get(fd, "advice")));
		json_decref(j);
	}
	pt_doctor_release(&r);

	/* a higher threshold and a cap */
	{
		struct pt_doctor_opts o = {.slow_ns = 9 * MS, .max_procs = 1};

		CHECK_EQ(pt_doctor_run(f, NULL, n, &o, &r), 0);
		CHECK_EQ(r.nr_procs, 1);
		CHECK(!strcmp(r.procs[0].comm, "big") && r.procs[0].slowest[0] == 3);
		pt_doctor_release(&r);
	}
	/* a spawn waiting 300 ms for its child's exec is no slow fork, unless asked */
	{
		struct pt_doctor_opts o = {.kinds = PT_KINDS_ALL};
		bool seen = false;

		f[n] = mk("posix-spawn", 99, 300 * MS);
		f[n].kind = PT_KIND_SPAWN;
		CHECK_EQ(pt_doctor_run(f, NULL, n + 1, NULL, &r), 0);
		for (size_t i = 0; i < r.nr_procs; i++)
			seen |= !strcmp(r.procs[i].comm, "posix-spawn");
		CHECK(!seen);
		CHECK_EQ(r.forks, n);
		pt_doctor_release(&r);
		CHECK_EQ(pt_doctor_run(f, NULL, n + 1, &o, &r), 0);
		for (size_t i = 0; i < r.nr_procs; i++)
			seen |= !strcmp(r.procs[i].comm, "posix-spawn");
		CHECK(seen);
		pt_doctor_release(&r);
	}
	/* nothing at all */
	CHECK_EQ(pt_doctor_run(f, NULL, 0, NULL, &r), 0);
	CHECK_EQ(r.nr_procs, 0);
	pt_doctor_release(&r);
	TEST_DONE();
}
