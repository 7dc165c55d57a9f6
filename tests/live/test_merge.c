/* SPDX-License-Identifier: MIT */
/*
 * The live capture's pure parts against naive references: the reorder
 * window (merge.h) hands events on in the order a plain sort of everything
 * gives, never before every CPU is past them, and its queues stay bounded;
 * the kallsyms lookup (ksyms.h) on a fake kallsyms file and ftrace's
 * function lists; the event formats (formats.h) from a fake tracefs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <traceevent/event-parse.h>

#include "fakefs.h"
#include "formats.h"
#include "ksyms.h"
#include "merge.h"
#include "check.h"

#define NR_CPUS 4
#define NR_EVENTS 20000

struct sink {
	uint64_t ts[NR_EVENTS];
	int q[NR_EVENTS];
	size_t n;
	uint64_t upto;
	bool early;
};

static int take(const struct pd_qev *e, int q, void *ctx)
{
	struct sink *s = ctx;

	if (e->ts > s->upto)
		s->early = true;
	s->ts[s->n] = e->ts;
	s->q[s->n++] = q;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Events arrive per CPU in time order, a few at a time, some CPUs lagging;
 * what comes out must be the plain sort of everything. */
static void test_merge_order(void)
{
	static uint64_t all[NR_EVENTS];
	static struct sink s;
	struct pd_merge *m;
	uint64_t next[NR_CPUS] = {0}, now = 0;
	bool drained[NR_CPUS];
	size_t made = 0;
	unsigned seed = 12345;

	CHECK(!pd_merge_new(NR_CPUS, 1 << 18, &m));
	while (made < NR_EVENTS) {
		now += 1000000; /* a 1 ms poll */
		for (int q = 0; q < NR_CPUS; q++) {
			int k = (int)(rand_r(&seed) % 40);

			/* a read takes at most k events; the CPU is drained when it had
			 * nothing older than now left (the premise of the window) */
			drained[q] = false;
			for (int i = 0; made < NR_EVENTS; i++) {
				struct pd_qev *e;

				if (!next[q])
					next[q] = 1 + rand_r(&seed) % 50000;
				if (next[q] > now) {
					drained[q] = true;
					break;
				}
				if (i == k)
					break;
				e = pd_merge_push(m, q, next[q]);
				CHECK(e != NULL);
				if (e)
					e->kind = PD_Q_RAW;
				all[made++] = next[q];
				next[q] += 1 + rand_r(&seed) % 50000;
			}
		}
		s.upto = pd_merge_safe_upto(m, drained, now, 5000000, false);
		CHECK(!pd_merge_out(m, s.upto, take, &s));
	}
	s.upto = pd_merge_safe_upto(m, drained, now, 5000000, true);
	CHECK(s.upto == UINT64_MAX);
	CHECK(!pd_merge_out(m, s.upto, take, &s));
	CHECK(!s.early);
	CHECK(s.n == made);
	qsort(all, made, sizeof(all[0]), cmp_u64);
	for (size_t i = 0; i < made && i < s.n; i++)
		if (all[i] != s.ts[i]) {
			fprintf(stderr, "event %zu: %llu, the sort says %llu\n", i,
				(unsigned long long)s.ts[i], (unsigned long long)all[i]);
			test_failures++;
			break;
		}
	pd_merge_free(m);
}

/* A CPU that still has data holds everything after its last event back. */
static void test_merge_window(void)
{
	static struct sink s;
	struct pd_merge *m;
	bool drained[2] = {false, true};

	CHECK(!pd_merge_new(2, 4, &m));
	pd_merge_push(m, 0, 100);
	pd_merge_push(m, 1, 50);
	pd_merge_push(m, 1, 150);
	s.upto = pd_merge_safe_upto(m, drained, 1000000000, 5000000, false);
	CHECK(s.upto == 100);
	CHECK(!pd_merge_out(m, s.upto, take, &s));
	CHECK(s.n == 2 && s.ts[0] == 50 && s.ts[1] == 100);
	CHECK(pd_merge_len(m, 1) == 1);
	/* bounded: the fifth event of a queue of at most 4 is refused */
	CHECK(pd_merge_push(m, 0, 200) && pd_merge_push(m, 0, 201) && pd_merge_push(m, 0, 202));
	CHECK(pd_merge_push(m, 0, 203));
	CHECK(!pd_merge_push(m, 0, 204));
	pd_merge_free(m);
}

static void test_ksyms(const char *dir)
{
	static const char *const names[] = {"kernel_clone", "copy_page_range", "dup_mmap"};
	char path[512], err[256];
	struct pd_ksyms *k;
	uint64_t id;
	FILE *f;

	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	f = fopen(path, "w");
	fputs("ffffffff81000000 T _stext\n"
	      "ffffffff810a1230 T kernel_clone\n"
	      "ffffffff812b0000 t copy_page_range\n"
	      "ffffffff812b0100 t copy_page_range_other\n",
	      f);
	fclose(f);
	CHECK(!pd_ksyms_load(path, PD_KSYMS_KALLSYMS, names, 3, &k, err, sizeof(err)));
	CHECK(!strcmp(pd_ksyms_name(k, 0xffffffff810a1234ull, &id), "kernel_clone") && id == 1);
	CHECK(!strcmp(pd_ksyms_name(k, 0xffffffff812b0000ull, &id), "copy_page_range") && id == 2);
	CHECK(!pd_ksyms_name(k, 0xffffffff812b0100ull, &id) && id == 0);
	pd_ksyms_free(k);
	/* without CAP_SYSLOG every address reads 0 */
	f = fopen(path, "w");
	fputs("0000000000000000 T kernel_clone\n0000000000000000 t dup_mmap\n", f);
	fclose(f);
	CHECK(pd_ksyms_load(path, PD_KSYMS_KALLSYMS, names, 3, &k, err, sizeof(err)) == -EPERM &&
	      strstr(err, "CAP_SYSLOG"));
	CHECK(pd_ksyms_load("/nonexistent/kallsyms", PD_KSYMS_KALLSYMS, names, 3, &k, err,
			    sizeof(err)) == -ENOENT);
}

/* ftrace's function lists: a name's line is its index, a name listed twice
 * has no usable index, and the _addrs listing gives call sites (ENDBR + 4) */
static void test_ftrace_lists(const char *dir)
{
	static const char *const names[] = {"kernel_clone", "copy_page_range", "dup_mmap",
					    "missing"};
	char path[512], err[256];
	struct pd_ksyms *k;
	uint64_t id;
	FILE *f;

	snprintf(path, sizeof(path), "%s/available_filter_functions", dir);
	f = fopen(path, "w");
	fputs("_stext\n__ftrace_invalid_address___64\nkernel_clone\ncopy_page_range\n"
	      "dup_mmap [some_mod]\ncopy_page_range_other\ncopy_page_range",
	      f);
	fclose(f);
	CHECK(!pd_ksyms_load(path, PD_KSYMS_FTRACE, names, 4, &k, err, sizeof(err)));
	CHECK(pd_ksyms_count(k, 0) == 1 && pd_ksyms_line(k, 0) == 3);
	CHECK(pd_ksyms_count(k, 1) == 2 && pd_ksyms_line(k, 1) == 4);
	CHECK(pd_ksyms_count(k, 2) == 1 && pd_ksyms_line(k, 2) == 5);
	CHECK(pd_ksyms_count(k, 3) == 0 && pd_ksyms_line(k, 3) == 0);
	CHECK(!pd_ksyms_has_addrs(k) && !pd_ksyms_name(k, 0, &id));
	pd_ksyms_free(k);
	f = fopen(path, "w");
	fputs("ffffffff81000004 _stext\nffffffff810a1234 kernel_clone\n"
	      "ffffffff812b0004 copy_page_range\n",
	      f);
	fclose(f);
	CHECK(!pd_ksyms_load(path, PD_KSYMS_FTRACE_ADDRS, names, 4, &k, err, sizeof(err)));
	CHECK(pd_ksyms_has_addrs(k) && pd_ksyms_line(k, 1) == 3);
	CHECK(!strcmp(pd_ksyms_name(k, 0xffffffff810a1234ull, &id), "kernel_clone") && id == 1);
	CHECK(!strcmp(pd_ksyms_name(k, 0xffffffff812b0000ull, &id), "copy_page_range") && id == 2);
	CHECK(!pd_ksyms_name(k, 0xffffffff81000004ull, &id) && id == 0);
	pd_ksyms_free(k);
}

/* Only the events asked for, those the kernel has; a missing events directory is an error. */
static void test_formats(const char *dir)
{
	static const char *const want[] = {"sched/sched_process_fork", "ftrace/funcgraph_entry",
					   NULL};
	char t[512], err[256];
	struct tep_handle *tep = NULL;
	struct tep_event *ev;

	snprintf(t, sizeof(t), "%s/tracefs", dir);
	CHECK(pd_formats_load(t, want, &tep, err, sizeof(err)) < 0 && !tep && err[0]);
	mkdir(t, 0700);
	mk(t, "events");
	mk(t, "events/sched");
	mk(t, "events/sched/sched_process_fork");
	mk(t, "events/sched/sched_switch");
	put(t, "events/header_page",
	    "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
	    "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
	    "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
	    "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n");
	put(t, "events/sched/sched_process_fork/format",
	    "name: sched_process_fork\nID: 366\nformat:\n"
	    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
	    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
	    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
	    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
	    "\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n"
	    "\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n"
	    "\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n"
	    "\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n\n"
	    "print fmt: \"comm=%s pid=%d child_comm=%s child_pid=%d\", __get_str(parent_comm), "
	    "REC->parent_pid, __get_str(child_comm), REC->child_pid\n");
	put(t, "events/sched/sched_switch/format", "name: sched_switch\nID: 300\nformat:\n");
	CHECK(!pd_formats_load(t, want, &tep, err, sizeof(err)) && tep);
	ev = tep ? tep_find_event_by_name(tep, "sched", "sched_process_fork") : NULL;
	CHECK(ev && ev->id == 366 && tep_find_field(ev, "child_pid") &&
	      tep_find_field(ev, "child_pid")->offset == 20);
	/* not asked for, or not in this tracefs */
	CHECK(tep && !tep_find_event_by_name(tep, "sched", "sched_switch"));
	CHECK(tep && !tep_find_event_by_name(tep, "ftrace", "funcgraph_entry"));
	tep_free(tep);
}

int main(void)
{
	char dir[] = "/tmp/ptescoped-merge-XXXXXX", cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_merge_order();
	test_merge_window();
	test_ftrace_lists(dir);
	test_ksyms(dir);
	test_formats(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	TEST_DONE();
}
