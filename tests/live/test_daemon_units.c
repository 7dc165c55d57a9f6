/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of ptescoped's core pieces that need no kernel: the syscall-mode
 * fork assembly (sysfork.h), configuration parsing (config.h) and its key
 * table, investigation bookkeeping (investigate.h: budget, cool-down,
 * expiry, the /proc comm scan against a fake /proc), and tracefs
 * ownership (tfs.h) against a directory of plain files laid out like tracefs:
 * save before change, restore, refusal checks, and repair from the state
 * file a killed run leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "investigate.h"
#include "sysfork.h"
#include "fakefs.h"
#include "tfs.h"
#include "util.h"
#include "yield.h"
#include "check.h"

/* ------------------------------------------------------------- sysfork */

struct got {
	struct pt_fork f[16];
	int n;
};

static int collect(const struct pt_fork *f, void *ctx)
{
	struct got *g = ctx;

	if (g->n < 16)
		g->f[g->n++] = *f;
	return 0;
}

static void test_sysfork(void)
{
	struct pd_sysfork *s;
	struct got g = {0};

	CHECK(!pd_sysfork_new(collect, &g, 1000, 100, &s));
	/* an ordinary fork: enter, fork event, exit with the child's pid */
	pd_sysfork_enter(s, 10, 5000);
	pd_sysfork_fork(s, 10, "redis", 11, "redis", 5400);
	CHECK(g.n == 0);
	pd_sysfork_exit(s, 10, 11, 9000);
	CHECK(g.n == 1);
	CHECK(g.f[0].parent_pid == 10 && g.f[0].child_pid == 11);
	CHECK(g.f[0].kernel_clone_ns == 4000 && g.f[0].ts_ns == 5000);
	CHECK(g.f[0].complete && !g.f[0].flags);
	CHECK(!strcmp(g.f[0].parent_comm, "redis"));
	CHECK(g.f[0].copy_page_range_ns == PT_NO_TIME && g.f[0].ptes == PT_NULL);
	/* the child's own syscall exit (returns 0, no entry) is not a fork */
	pd_sysfork_exit(s, 11, 0, 9100);
	CHECK(g.n == 1);
	/* a failed clone: no fork event, nothing */
	pd_sysfork_enter(s, 12, 10000);
	pd_sysfork_exit(s, 12, -11, 10100);
	CHECK(g.n == 1 && pd_sysfork_inflight(s) == 0);
	/* a kernel-internal fork (no syscall) after the grace period: complete, null time */
	pd_sysfork_fork(s, 2, "kthreadd", 50, "kworker", 20000);
	CHECK(g.n == 2 && g.f[1].complete && g.f[1].kernel_clone_ns == PT_NO_TIME);
	CHECK(g.f[1].ts_ns == 20000);
	/* the same within the grace period: may have begun before capture */
	pd_sysfork_fork(s, 7, "x", 51, "x", 1050);
	CHECK(g.n == 3 && !g.f[2].complete && (g.f[2].flags & PT_FORK_PARTIAL));
	/* a container: the exit returns the namespaced pid, the event the global one */
	pd_sysfork_enter(s, 20, 30000);
	pd_sysfork_fork(s, 20, "sh", 4242, "sh", 30100);
	pd_sysfork_exit(s, 20, 3, 30500);
	CHECK(g.n == 4 && g.f[3].child_pid == 4242 && g.f[3].kernel_clone_ns == 500);
	/* loss while in flight: flagged */
	pd_sysfork_enter(s, 30, 40000);
	pd_sysfork_lost(s);
	pd_sysfork_fork(s, 30, "a", 31, "a", 40100);
	pd_sysfork_exit(s, 30, 31, 40200);
	CHECK(g.n == 5 && !g.f[4].complete && (g.f[4].flags & PT_FORK_LOST_EVENTS));
	/* many tasks at once: the table keeps them apart (and deletes correctly) */
	for (int p = 100; p < 3100; p++)
		pd_sysfork_enter(s, p, 50000 + (uint64_t)p);
	for (int p = 100; p < 3100; p += 2)
		pd_sysfork_exit(s, p, -1, 60000);
	CHECK(pd_sysfork_inflight(s) == 1500);
	g.n = 0;
	pd_sysfork_fork(s, 3099, "z", 9999, "z", 70000);
	pd_sysfork_exit(s, 3099, 9999, 70001);
	CHECK(g.n == 1 && g.f[0].kernel_clone_ns == 70001 - 53099);
	/* the end of capture: a fork waiting for its exit is partial */
	g.n = 0;
	pd_sysfork_enter(s, 40, 80000);
	pd_sysfork_fork(s, 40, "b", 41, "b", 80100);
	CHECK(!pd_sysfork_finish(s));
	CHECK(g.n == 1 && (g.f[0].flags & PT_FORK_PARTIAL) && g.f[0].kernel_clone_ns == PT_NO_TIME);
	CHECK(g.f[0].kind == PT_KIND_UNKNOWN && !g.f[0].has_clone_flags);
	pd_sysfork_free(s);
}

/* task_newtask gives each syscall-mode fork its kind (clone3's flags included). */
static void test_sysfork_kinds(void)
{
	struct pd_sysfork *s;
	struct got g = {0};

	CHECK(!pd_sysfork_new(collect, &g, 1000, 100, &s));
	/* pthread_create through clone3 */
	pd_sysfork_enter(s, 10, 5000);
	pd_sysfork_newtask(s, 10, 11, 0x3d0f00);
	pd_sysfork_fork(s, 10, "java", 11, "java", 5400);
	pd_sysfork_exit(s, 10, 11, 9000);
	/* posix_spawn: CLONE_VM | CLONE_VFORK, its time waits for the exec */
	pd_sysfork_enter(s, 20, 10000);
	pd_sysfork_newtask(s, 20, 21, 0x4111);
	pd_sysfork_fork(s, 20, "python3", 21, "python3", 10100);
	pd_sysfork_exit(s, 20, 21, 338000000);
	/* fork() */
	pd_sysfork_enter(s, 30, 20000);
	pd_sysfork_newtask(s, 30, 31, 0x1200011);
	pd_sysfork_fork(s, 30, "redis", 31, "redis", 20100);
	pd_sysfork_exit(s, 30, 31, 30000);
	/* a kernel thread: no syscall, the newtask right before its fork event */
	pd_sysfork_newtask(s, 2, 50, 0x800711);
	pd_sysfork_fork(s, 2, "kthreadd", 50, "kworker", 40000);
	/* a newtask of another child does not name this one */
	pd_sysfork_enter(s, 40, 50000);
	pd_sysfork_newtask(s, 40, 99, 0x3d0f00);
	pd_sysfork_fork(s, 40, "x", 41, "x", 50100);
	pd_sysfork_exit(s, 40, 41, 50200);
	CHECK(g.n == 5);
	CHECK(g.f[0].kind == PT_KIND_THREAD && g.f[0].has_clone_flags &&
	      g.f[0].clone_flags == 0x3d0f00);
	CHECK(g.f[1].kind == PT_KIND_SPAWN);
	CHECK(g.f[2].kind == PT_KIND_FORK);
	CHECK(g.f[3].kind == PT_KIND_SPAWN); /* kernel_thread: CLONE_VM */
	CHECK(g.f[4].kind == PT_KIND_UNKNOWN && !g.f[4].has_clone_flags);
	pd_sysfork_free(s);
}

/* -------------------------------------------------------------- config */

static void test_config(const char *dir)
{
	struct pd_config c;
	char err[512], path[512];
	FILE *f;
	int ret;

	{
		char *argv[] = {"ptescoped", "--capture", "syscall", "--detail=pte", "--force",
				"--replay", "a.dat", "--replay", "b.txt", NULL};

		ret = pd_config_load(&c, 9, argv, err, sizeof(err));
		CHECK(!ret);
		CHECK(c.capture == PD_CAPTURE_SYSCALL && c.detail == PD_DETAIL_PTE && c.force);
		CHECK(c.nr_replay == 2 && !strcmp(c.replay[1], "b.txt"));
		CHECK(!strcmp(c.listen, "127.0.0.1:9466") && c.poll_ms == 1000 && c.watermark_pct == 25);
		CHECK(c.fork_hooks == PD_HOOKS_AUTO && c.sched == PD_SCHED_BATCH);
		pd_config_free(&c);
	}
	{
		char *argv[] = {"ptescoped", "--sched", "idle", NULL};

		CHECK(!pd_config_load(&c, 3, argv, err, sizeof(err)) && c.sched == PD_SCHED_IDLE);
		pd_config_free(&c);
		argv[2] = "fifo";
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "sched"));
		pd_config_free(&c);
	}
	{
		char *argv[] = {"ptescoped", "--fork-hooks", "graph", NULL};

		CHECK(!pd_config_load(&c, 3, argv, err, sizeof(err)));
		CHECK(c.fork_hooks == PD_HOOKS_GRAPH);
		pd_config_free(&c);
		argv[2] = "kprobes"; /* the value is "kprobe" */
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "fork-hooks"));
		pd_config_free(&c);
	}
	{
		/* an allow-list that would make duplicate series is refused with the reason */
		char *argv[] = {"ptescoped", "--comm-allow", "redis-server,other", NULL};

		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "duplicate") && strstr(err, "'other'"));
		pd_config_free(&c);
		argv[2] = "a,postgres,b,postgres";
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "'postgres' is listed twice"));
		pd_config_free(&c);
		argv[2] = "postgres,postgresql,other2";
		CHECK(!pd_config_load(&c, 3, argv, err, sizeof(err)));
		pd_config_free(&c);
		argv[1] = "--metrics-cgroup-label";
		argv[2] = "pod";
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "metrics-cgroup-label"));
		pd_config_free(&c);
		argv[2] = "container";
		CHECK(!pd_config_load(&c, 3, argv, err, sizeof(err)) && c.metrics_cgroup_label == 2 &&
		      c.metrics_cgroup_max == 20 && c.fork_cgroup);
		pd_config_free(&c);
	}
	{
		char *argv[] = {"ptescoped", "--capture", "graphs", NULL};

		ret = pd_config_load(&c, 3, argv, err, sizeof(err));
		CHECK(ret == -EINVAL && strstr(err, "--capture") && strstr(err, "graphs"));
		pd_config_free(&c);
	}
	{
		char *argv[] = {"ptescoped", "--poll-ms", "5", NULL};

		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL);
		pd_config_free(&c);
		argv[1] = "--listen";
		argv[2] = "localhost";
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL);
		pd_config_free(&c);
		argv[1] = "--bogus";
		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "unknown option"));
		pd_config_free(&c);
	}
	/* the file, then the command line over it */
	snprintf(path, sizeof(path), "%s/p.conf", dir);
	f = fopen(path, "w");
	fputs("# comment\n\ndetail = fork\nslow-fork-us = 500\n  capture=off \n", f);
	fclose(f);
	{
		char *argv[] = {"ptescoped", "--config", path, "--detail", "section", NULL};

		CHECK(!pd_config_load(&c, 5, argv, err, sizeof(err)));
		CHECK(c.detail == PD_DETAIL_SECTION && c.slow_fork_us == 500 &&
		      c.capture == PD_CAPTURE_OFF);
		pd_config_free(&c);
	}
	f = fopen(path, "w");
	fputs("detail = fork\nslow-fork-us = -3\n", f);
	fclose(f);
	{
		char *argv[] = {"ptescoped", "--config", path, NULL};

		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, "p.conf:2") != NULL);
		pd_config_free(&c);
	}
}

/* Every numeric key of the table: accepted at min and max, refused just outside. */
static void test_config_table(void)
{
	const struct pd_config_key *k;
	size_t nr, numeric = 0;
	struct pd_config c;
	char err[512], v[64], where[80];

	k = pd_config_keys(&nr);
	CHECK(nr >= 25);
	for (size_t i = 0; i < nr; i++) {
		bool dbl = k[i].type == PD_CFG_DOUBLE;

		if (k[i].type > PD_CFG_DOUBLE || k[i].type == PD_CFG_BOOL)
			continue;
		numeric++;
		snprintf(where, sizeof(where), "--%s", k[i].key);
		CHECK(!pd_config_init(&c));
		snprintf(v, sizeof(v), dbl ? "%g" : "%.0f", k[i].min);
		if (pd_config_set(&c, k[i].key, v, where, err, sizeof(err)))
			fprintf(stderr, "%s min %s refused: %s\n", k[i].key, v, err),
			    test_failures++;
		snprintf(v, sizeof(v), dbl ? "%g" : "%.0f", k[i].max);
		if (pd_config_set(&c, k[i].key, v, where, err, sizeof(err)))
			fprintf(stderr, "%s max %s refused: %s\n", k[i].key, v, err),
			    test_failures++;
		snprintf(v, sizeof(v), dbl ? "%g" : "%.0f", k[i].min - (dbl ? 0.001 : 1));
		err[0] = 0;
		if (pd_config_set(&c, k[i].key, v, where, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, where))
			fprintf(stderr, "%s min-1 %s accepted\n", k[i].key, v), test_failures++;
		snprintf(v, sizeof(v), dbl ? "%g" : "%.0f", k[i].max + (dbl ? 0.001 : 1));
		err[0] = 0;
		if (pd_config_set(&c, k[i].key, v, where, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, v))
			fprintf(stderr, "%s max+1 %s accepted\n", k[i].key, v), test_failures++;
		CHECK(pd_config_set(&c, k[i].key, "12abc", where, err, sizeof(err)) == -EINVAL);
		CHECK(pd_config_set(&c, k[i].key, "", where, err, sizeof(err)) == -EINVAL);
		pd_config_free(&c);
	}
	CHECK(numeric >= 11);
	/* the defaults, and the new keys landing in their fields */
	CHECK(!pd_config_init(&c));
	CHECK(c.detail == PD_DETAIL_FORK && c.investigation_max_s == 600 &&
	      c.auto_investigate_us == 0 && c.investigation_budget == 0.05 &&
	      c.auto_investigate_s == 30);
	CHECK(!pd_config_set(&c, "investigation-budget", "0.25", "x", err, sizeof(err)) &&
	      c.investigation_budget == 0.25);
	CHECK(!pd_config_set(&c, "investigation-cooldown-s", "42", "x", err, sizeof(err)) &&
	      c.investigation_cooldown_s == 42);
	CHECK(!pd_config_set(&c, "auto-investigate-us", "5000", "x", err, sizeof(err)) &&
	      c.auto_investigate_us == 5000);
	CHECK(!pd_config_set(&c, "retention-days", "7", "x", err, sizeof(err)) &&
	      c.retention_days == 7);
	CHECK(!pd_config_set(&c, "max-db-mb", "9", "x", err, sizeof(err)) && c.max_db_mb == 9);
	CHECK(!pd_config_set(&c, "buffer-kb", "4096", "x", err, sizeof(err)) && c.buffer_kb == 4096);
	CHECK(!pd_config_set(&c, "db-sync", "full", "x", err, sizeof(err)) && c.db_sync_full);
	CHECK(pd_config_set(&c, "db-sync", "fast", "x", err, sizeof(err)) == -EINVAL &&
	      strstr(err, "normal, full"));
	CHECK(!pd_config_set(&c, "force", NULL, "x", err, sizeof(err)) && c.force);
	CHECK(!pd_config_set(&c, "force", "no", "x", err, sizeof(err)) && !c.force);
	CHECK(pd_config_set(&c, "detail", NULL, "--detail", err, sizeof(err)) == -EINVAL);
	/* unknown keys are refused with the key named */
	CHECK(pd_config_set(&c, "investigation-maxs", "5", "f.conf:3", err, sizeof(err)) ==
		  -ENOENT &&
	      strstr(err, "'investigation-maxs'") && strstr(err, "f.conf:3"));
	pd_config_free(&c);
	{
		char *argv[] = {"ptescoped", "--investigation-budget=1.5", NULL};

		CHECK(pd_config_load(&c, 2, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "--investigation-budget") && strstr(err, "1.5"));
		pd_config_free(&c);
	}
	{
		char *argv[] = {"ptescoped", "--no-such-key", "1", NULL};

		CHECK(pd_config_load(&c, 3, argv, err, sizeof(err)) == -EINVAL &&
		      strstr(err, "no-such-key"));
		pd_config_free(&c);
	}
}

/* ------------------------------------------------------- investigations */

#define S 1000000000ull


static void test_investigate(const char *dir)
{
	struct pd_inv_policy pol = {
	    .max_ns = 600 * S, .auto_ns = 30 * S, .cooldown_ns = 300 * S, .budget = 0.05};
	struct pd_inv req = {.reason = PD_INV_API, .detail = PD_DETAIL_PTE, .pid = -1};
	struct pd_inv_counters ic;
	struct pd_inv_state s;
	enum pd_inv_refusal why;
	uint64_t t0 = 1000 * S;
	json_t *j;

	pd_inv_init(&s, &pol);
	/* an API one: admitted, capped at max, due exactly at its end */
	CHECK(pd_inv_admit(&s, PD_INV_API, 900 * S, t0, &why));
	CHECK(pd_inv_begin(&s, &req, 900 * S, t0, 5000, 77) == 1);
	CHECK(s.active && s.cur.until_mono_ns == t0 + 600 * S);
	CHECK(s.cur.until_wall_ns == 5000 + (int64_t)(600 * S));
	CHECK(!pd_inv_admit(&s, PD_INV_API, 10 * S, t0 + S, &why) && why == PD_INV_REFUSED_ACTIVE);
	CHECK(!pd_inv_due(&s, t0 + 600 * S - 1) && pd_inv_due(&s, t0 + 600 * S));
	pd_inv_progress(&s, 1234, 77 + 5000, t0 + 100 * S);
	CHECK(s.cur.events == 1234 && s.cur.cpu_ns == 5000);
	/* budget: 100 s used of the hour so far */
	CHECK(pd_inv_used_ns(&s, t0 + 100 * S) == 100 * S);
	pd_inv_finish(&s, PD_INV_END_API, t0 + 120 * S, 9000, 77 + 6000);
	CHECK(!s.active && s.nr_hist == 1 && s.hist[0].end == PD_INV_END_API &&
	      s.hist[0].cpu_ns == 6000);
	CHECK(pd_inv_used_ns(&s, t0 + 200 * S) == 120 * S);
	/* automatic: refused within the cool-down, then over the budget (120 + 90 > 180 s) */
	CHECK(!pd_inv_admit(&s, PD_INV_AUTO, 30 * S, t0 + 200 * S, &why) &&
	      why == PD_INV_REFUSED_COOLDOWN);
	CHECK(!pd_inv_admit(&s, PD_INV_AUTO, 90 * S, t0 + 500 * S, &why) &&
	      why == PD_INV_REFUSED_BUDGET);
	CHECK(pd_inv_admit(&s, PD_INV_AUTO, 30 * S, t0 + 500 * S, &why));
	/* an API one is never refused by the budget */
	CHECK(pd_inv_admit(&s, PD_INV_API, 600 * S, t0 + 500 * S, &why));
	/* the window slides: an hour and a minute later the first one no longer counts */
	CHECK(pd_inv_used_ns(&s, t0 + 3661 * S + 120 * S) == 0);
	CHECK(pd_inv_admit(&s, PD_INV_AUTO, 150 * S, t0 + 3800 * S, &why));
	pd_inv_counters(&s, t0 + 3800 * S, &ic);
	CHECK(!ic.active && ic.started[PD_INV_API] == 1 && ic.started[PD_INV_AUTO] == 0);
	CHECK(ic.refused[PD_INV_REFUSED_ACTIVE] == 1 && ic.refused[PD_INV_REFUSED_COOLDOWN] == 1 &&
	      ic.refused[PD_INV_REFUSED_BUDGET] == 1);
	CHECK(ic.seconds_total > 119.9 && ic.seconds_total < 120.1);
	/* an automatic one crossing minute boundaries: counted whole */
	req.reason = PD_INV_AUTO;
	req.nr_pids = 1;
	req.pids[0] = 42;
	pd_inv_begin(&s, &req, pol.auto_ns, t0 + 3800 * S + S / 2, 0, 0);
	CHECK(pd_inv_due(&s, t0 + 3830 * S + S / 2));
	pd_inv_finish(&s, PD_INV_END_TIME, t0 + 3830 * S + S / 2, 0, 0);
	CHECK(pd_inv_used_ns(&s, t0 + 3831 * S) == 30 * S);
	CHECK(pd_inv_budget_used(&s, t0 + 3831 * S) > 0.0083 &&
	      pd_inv_budget_used(&s, t0 + 3831 * S) < 0.0084);
	j = pd_inv_list_json(&s, t0 + 3831 * S);
	CHECK(j && json_array_size(json_object_get(j, "recent")) == 2);
	CHECK(json_is_null(json_object_get(j, "active")));
	CHECK(!strcmp(json_string_value(json_object_get(
			  json_array_get(json_object_get(j, "recent"), 0), "reason")),
		      "auto"));
	CHECK(json_integer_value(json_array_get(
		  json_object_get(json_array_get(json_object_get(j, "recent"), 0), "pids"), 0)) ==
	      42);
	json_decref(j);
	/* the history keeps the last PD_INV_HISTORY */
	for (int i = 0; i < PD_INV_HISTORY + 3; i++) {
		pd_inv_begin(&s, &req, S, t0 + 5000 * S + (uint64_t)i * 10 * S, 0, 0);
		pd_inv_finish(&s, PD_INV_END_TIME, t0 + 5001 * S + (uint64_t)i * 10 * S, 0, 0);
	}
	CHECK(s.nr_hist == PD_INV_HISTORY);
	j = pd_inv_list_json(&s, t0 + 6000 * S);
	CHECK(json_integer_value(json_object_get(
		  json_array_get(json_object_get(j, "recent"), 0), "id")) == (json_int_t)s.next_id - 1);
	json_decref(j);
	/* comm to pids against a fake /proc */
	{
		char p[512];
		int pids[4];
		size_t nr;
		bool more;

		for (int pid = 100; pid < 106; pid++) {
			snprintf(p, sizeof(p), "%s/proc/%d", dir, pid);
			mkdir(dir, 0700);
			snprintf(p, sizeof(p), "%s/proc", dir);
			mkdir(p, 0700);
			snprintf(p, sizeof(p), "%s/proc/%d", dir, pid);
			mkdir(p, 0700);
			snprintf(p, sizeof(p), "proc/%d/comm", pid);
			put(dir, p, pid % 2 ? "redis-server\n" : "bash\n");
		}
		mkdir(strcat(strcpy(p, dir), "/proc/self"), 0700);
		snprintf(p, sizeof(p), "%s/proc", dir);
		CHECK(!pd_inv_pids_of_comm(p, "redis-server", pids, 4, &nr, &more));
		CHECK(nr == 3 && !more);
		CHECK(!pd_inv_pids_of_comm(p, "bash", pids, 2, &nr, &more) && nr == 2 && more);
		CHECK(!pd_inv_pids_of_comm(p, "redis", pids, 4, &nr, &more) && nr == 0);
		CHECK(pd_inv_pids_of_comm("/nonexistent-proc", "x", pids, 4, &nr, &more) == -ENOENT);
	}
}

/* ----------------------------------------------------------------- tfs */



static void test_tfs(const char *dir)
{
	char t[512], state[600], err[512], what[512], msg[1024];
	struct pd_tfs *a, *b;

	snprintf(t, sizeof(t), "%s/tracing", dir);
	snprintf(state, sizeof(state), "%s/state/tracefs-state", dir);
	mkdir(t, 0700);
	snprintf(msg, sizeof(msg), "%s/instances", t);
	mkdir(msg, 0700);
	snprintf(msg, sizeof(msg), "%s/options", t);
	mkdir(msg, 0700);
	put(t, "current_tracer", "nop\n");
	put(t, "trace_clock", "[local] global counter mono\n");
	put(t, "buffer_size_kb", "7 (expanded: 1408)\n");
	put(t, "set_graph_function", "#### all functions enabled ####\n");
	put(t, "set_ftrace_filter", "#### all functions enabled ####\n");
	put(t, "set_event", "");
	put(t, "tracing_on", "1\n");

	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_check_top_free(a, what, sizeof(what)));
	CHECK(pd_tfs_repair(a, "inst", msg, sizeof(msg)) == 0);
	CHECK(!pd_tfs_write(a, "tracing_on", "0", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "trace_clock", "mono", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "buffer_size_kb", "8192", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "set_ftrace_filter", "", err, sizeof(err)));
	CHECK(!pd_tfs_append(a, "set_ftrace_filter", "kernel_clone", err, sizeof(err)));
	CHECK(pd_tfs_dirty(a));
	CHECK(access(state, F_OK) == 0);
	CHECK(!strcmp(get(t, "current_tracer"), "function_graph"));
	/* a second owner sees the top level in use */
	CHECK(!pd_tfs_new(t, state, &b));
	CHECK(pd_tfs_check_top_free(b, what, sizeof(what)) == -EBUSY &&
	      strstr(what, "current_tracer"));
	pd_tfs_free(b);
	CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	CHECK(!strcmp(get(t, "trace_clock"), "local"));
	CHECK(!strcmp(get(t, "buffer_size_kb"), "1408"));
	CHECK(!strcmp(get(t, "tracing_on"), "1"));
	CHECK(!strcmp(get(t, "set_ftrace_filter"), ""));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(a);

	/* a killed run: its state file is repaired by the next one */
	put(t, "set_ftrace_filter", "foo\nbar\n");
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(!pd_tfs_use_instance(a, "inst", err, sizeof(err)));
	CHECK(!pd_tfs_drop_instance(a, err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "set_ftrace_filter", "kernel_clone", err, sizeof(err)));
	pd_tfs_free(a); /* "SIGKILL": nothing restored */
	CHECK(!strcmp(get(t, "set_ftrace_filter"), "kernel_clone"));
	CHECK(!pd_tfs_new(t, state, &b));
	/* the state file names our own pid: the check treats it as dead (not another daemon) */
	CHECK(pd_tfs_repair(b, "inst", msg, sizeof(msg)) == 2);
	CHECK(strstr(msg, "repaired") != NULL);
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	CHECK(!strcmp(get(t, "set_ftrace_filter"), "foo\nbar\n"));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(b);

	/* an instance of our name with no state file is a leftover of ours */
	snprintf(msg, sizeof(msg), "%s/instances/inst", t);
	mkdir(msg, 0700);
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(pd_tfs_repair(a, "inst", msg, sizeof(msg)) == 1);
	snprintf(msg, sizeof(msg), "%s/instances/inst", t);
	CHECK(access(msg, F_OK) != 0);
	pd_tfs_free(a);

	/* a state file from another boot is dropped, nothing restored */
	mkdir(state, 0700);
	rmdir(state);
	{
		char d2[512];

		snprintf(d2, sizeof(d2), "%s/state", dir);
		put(d2, "tracefs-state",
		    "ptescoped-tracefs-state 1\nboot other\npid 1\nfile current_tracer 6e6f70\n");
		snprintf(d2, sizeof(d2), "%s/state/tracefs-state", dir);
		chmod(d2, 0600);
	}
	put(t, "current_tracer", "function\n");
	CHECK(!pd_tfs_new(t, state, &a));
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) == 0);
	CHECK(!strcmp(get(t, "current_tracer"), "function\n"));
	CHECK(access(state, F_OK) != 0);
	pd_tfs_free(a);
}

/* Spins @ns of wall time through yield points; returns the wall time it took. */
static uint64_t spin_points(uint64_t ns)
{
	uint64_t t0 = pt_mono_ns(), now;

	while ((now = pt_mono_ns()) - t0 < ns)
		pd_yield_point();
	return now - t0;
}

/* Yield points: none while off; while on, at least one at once and another
 * after PD_YIELD_NS, and never two closer than PD_YIELD_NS. */
static void test_yield(void)
{
	unsigned long long n0 = pd_yield_count(), n;
	uint64_t took;

	pd_yield_enable(false);
	spin_points(2000000);
	CHECKF(pd_yield_count() == n0, "yield points off: %llu yields", pd_yield_count() - n0);
	pd_yield_enable(true);
	took = spin_points(2000000);
	n = pd_yield_count() - n0;
	CHECKF(n >= 2 && n <= took / PD_YIELD_NS + 1,
	       "yield points on: %llu yields in %llu ns (one per %llu ns at most)", n,
	       (unsigned long long)took, (unsigned long long)PD_YIELD_NS);
	pd_yield_enable(false);
}

int main(void)
{
	char dir[] = "/tmp/ptescoped-unit-XXXXXX";
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_sysfork();
	test_sysfork_kinds();
	test_config(dir);
	test_config_table();
	test_investigate(dir);
	test_tfs(dir);
	test_yield();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	if (test_failures)
		fprintf(stderr, "%d check(s) failed\n", test_failures);
	else
		printf("all daemon unit checks passed\n");
	return test_failures ? 1 : 0;
}
