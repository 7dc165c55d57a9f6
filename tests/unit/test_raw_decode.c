/* SPDX-License-Identifier: MIT */
/*
 * Raw record decoding (raw_decode.c) through libtraceevent: the event format
 * text of Debian 6.1's kernel (as stored in a real trace.dat) parsed by
 * libtraceevent, then raw records written byte by byte and decoded.
 * Also a layout with the fields moved (as a newer kernel could have) and
 * records cut short.
 */
#include <errno.h>
#include <string.h>

#include "raw_decode.h"
#include "check.h"

/* The common fields every event format of Debian 6.1 starts with. */
#define COMMON_FIELDS                                                                              \
	"\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n" \
	"\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n" \
	"\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n" \
	"\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"

static const char entry_fmt[] =
	"name: funcgraph_entry\n"
	"ID: 11\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n"
	"\n"
	"print fmt: \"--> %ps (%d)\", (void *)REC->func, REC->depth\n";

static const char exit_fmt[] =
	"name: funcgraph_exit\n"
	"ID: 10\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n"
	"\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;\n"
	"\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n"
	"\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n"
	"\n"
	"print fmt: \"<-- %ps (%d) (start: %llx  end: %llx) over: %d\", (void *)REC->func, "
	"REC->depth, REC->calltime, REC->rettime, REC->depth\n";

static const char fork_fmt[] =
	"name: sched_process_fork\n"
	"ID: 313\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:1;\n"
	"\tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n"
	"\tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:1;\n"
	"\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n"
	"\n"
	"print fmt: \"comm=%s pid=%d child_comm=%s child_pid=%d\", REC->parent_comm, "
	"REC->parent_pid, REC->child_comm, REC->child_pid\n";

/* The exit event as a kernel with the depth and func swapped would describe it. */
static const char exit_moved_fmt[] =
	"name: funcgraph_exit\n"
	"ID: 10\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:int depth;\toffset:8;\tsize:4;\tsigned:1;\n"
	"\tfield:unsigned int overrun;\toffset:12;\tsize:4;\tsigned:0;\n"
	"\tfield:unsigned long func;\toffset:16;\tsize:8;\tsigned:0;\n"
	"\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n"
	"\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n"
	"\n"
	"print fmt: \"<-- %ps\", (void *)REC->func\n";

/* sched_process_fork as Linux 6.18 describes it: the comms are dynamic strings. */
static const char fork_dyn_fmt[] =
	"name: sched_process_fork\n"
	"ID: 366\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n"
	"\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n"
	"\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n"
	"\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n"
	"\n"
	"print fmt: \"comm=%s pid=%d child_comm=%s child_pid=%d\", __get_str(parent_comm), "
	"REC->parent_pid, __get_str(child_comm), REC->child_pid\n";

static void put(unsigned char *buf, int off, uint64_t v, int size)
{
	memcpy(buf + off, &v, (size_t)size); /* host order: the tep handle is host order */
}

static struct tep_handle *new_tep(const char *exit_text)
{
	struct tep_handle *tep = tep_alloc();

	tep_set_long_size(tep, 8);
	tep_set_file_bigendian(tep, tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
	CHECK_EQ(tep_parse_event(tep, entry_fmt, sizeof(entry_fmt) - 1, "ftrace"), 0);
	CHECK_EQ(tep_parse_event(tep, exit_text, strlen(exit_text), "ftrace"), 0);
	CHECK_EQ(tep_parse_event(tep, fork_fmt, sizeof(fork_fmt) - 1, "sched"), 0);
	return tep;
}

static void test_debian61(void)
{
	struct tep_handle *tep = new_tep(exit_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event ev;
	unsigned char rec[64];

	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	CHECK(pt_raw_decoder_has_graph(d));
	CHECK(pt_raw_decoder_has_fork(d));

	memset(rec, 0, sizeof(rec));
	put(rec, 0, 11, 2);
	put(rec, 2, 0x08, 1); /* hardirq */
	put(rec, 4, 96, 4);
	put(rec, 8, 0xffffffff81234560ull, 8);
	put(rec, 16, 3, 4);
	CHECK_EQ(pt_raw_decode(d, rec, 24, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_ENTRY);
	CHECK_EQ(ev.pid, 96);
	CHECK_EQ(ev.depth, 3);
	CHECK(ev.func == 0xffffffff81234560ull);
	CHECK(ev.in_irq);
	put(rec, 2, 0x01, 1); /* interrupts off, no hardirq (irq entry/exit code) */
	CHECK_EQ(pt_raw_decode(d, rec, 24, &ev), 1);
	CHECK(ev.in_irq);
	put(rec, 2, 0x04 | 0x20, 1); /* need-resched bits alone: task context */
	CHECK_EQ(pt_raw_decode(d, rec, 24, &ev), 1);
	CHECK(!ev.in_irq);

	memset(rec, 0, sizeof(rec));
	put(rec, 0, 10, 2);
	put(rec, 4, 97, 4);
	put(rec, 8, 0xffffffff81000010ull, 8);
	put(rec, 16, 1, 4);
	put(rec, 20, 5, 4); /* overrun */
	put(rec, 24, 7926505130ull, 8);
	put(rec, 32, 7926505981ull, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 40, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_EXIT);
	CHECK_EQ(ev.pid, 97);
	CHECK_EQ(ev.depth, 1);
	CHECK_EQ(ev.overrun, 5);
	CHECK_EQ(ev.calltime, 7926505130ull);
	CHECK_EQ(ev.rettime, 7926505981ull);
	CHECK(!ev.in_irq);
	/* cut short: rettime would lie outside the record */
	CHECK_EQ(pt_raw_decode(d, rec, 36, &ev), 0);
	CHECK_EQ(pt_raw_decode(d, rec, 0, &ev), 0);

	memset(rec, 0, sizeof(rec));
	put(rec, 0, 313, 2);
	put(rec, 4, 96, 4);
	memcpy(rec + 8, "forker", 6);
	put(rec, 24, 96, 4);
	memcpy(rec + 28, "0123456789abcdef", 16); /* no NUL inside the field */
	put(rec, 44, 104, 4);
	CHECK_EQ(pt_raw_decode(d, rec, 48, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_FORK);
	CHECK_EQ(ev.pid, 96);
	CHECK_EQ(ev.child_pid, 104);
	CHECK(!strcmp(ev.parent_comm, "forker"));
	CHECK(!strcmp(ev.child_comm, "0123456789abcdef"));

	/* an event we do not read */
	put(rec, 0, 999, 2);
	CHECK_EQ(pt_raw_decode(d, rec, 48, &ev), 0);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

static void test_moved_fields(void)
{
	struct tep_handle *tep = new_tep(exit_moved_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event ev;
	unsigned char rec[64];

	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	memset(rec, 0, sizeof(rec));
	put(rec, 0, 10, 2);
	put(rec, 4, 5, 4);
	put(rec, 8, 2, 4);
	put(rec, 16, 0xffffffff81000020ull, 8);
	put(rec, 24, 100, 8);
	put(rec, 32, 250, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 40, &ev), 1);
	CHECK_EQ(ev.depth, 2);
	CHECK(ev.func == 0xffffffff81000020ull);
	CHECK_EQ(ev.rettime - ev.calltime, 150);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

static void test_dynamic_comms(void)
{
	struct tep_handle *tep = tep_alloc();
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event ev;
	unsigned char rec[64];

	tep_set_long_size(tep, 8);
	tep_set_file_bigendian(tep, tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
	CHECK_EQ(tep_parse_event(tep, fork_dyn_fmt, sizeof(fork_dyn_fmt) - 1, "sched"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d) {
		tep_free(tep);
		return;
	}
	CHECK(pt_raw_decoder_has_fork(d));
	CHECK(!pt_raw_decoder_has_graph(d));
	memset(rec, 0, sizeof(rec));
	put(rec, 0, 366, 2);
	put(rec, 4, 4242, 4);
	put(rec, 8, (7u << 16) | 24, 4); /* "python3" + NUL at 24 */
	put(rec, 12, 4242, 4);
	put(rec, 16, (5u << 16) | 32, 4); /* "gunic" at 32, no NUL inside its length */
	put(rec, 20, 4243, 4);
	memcpy(rec + 24, "python3", 8);
	memcpy(rec + 32, "gunicorn", 8);
	CHECK_EQ(pt_raw_decode(d, rec, 40, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_FORK);
	CHECK_EQ(ev.pid, 4242);
	CHECK_EQ(ev.child_pid, 4243);
	CHECK(!strcmp(ev.parent_comm, "python3"));
	CHECK(!strcmp(ev.child_comm, "gunic"));
	/* a locator pointing outside the record gives an empty comm, not a read past it */
	put(rec, 8, (16u << 16) | 30, 4);
	CHECK_EQ(pt_raw_decode(d, rec, 40, &ev), 1);
	CHECK(!strcmp(ev.parent_comm, ""));
	pt_raw_decoder_free(d);
	tep_free(tep);
}

/* task_newtask as Linux 6.1 (unsigned long) and 6.18 (u64) describe it: the clone's flags. */
static const char newtask_fmt[] =
	"name: task_newtask\n"
	"ID: 205\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;\n"
	"\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;\n"
	"\tfield:unsigned long clone_flags;\toffset:32;\tsize:8;\tsigned:0;\n"
	"\tfield:short oom_score_adj;\toffset:40;\tsize:2;\tsigned:1;\n"
	"\n"
	"print fmt: \"pid=%d comm=%s clone_flags=%lx oom_score_adj=%hd\", REC->pid, REC->comm, "
	"REC->clone_flags, REC->oom_score_adj\n";

static void test_newtask(void)
{
	struct tep_handle *tep = tep_alloc();
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event ev;
	struct pt_event e;
	unsigned char rec[48];

	tep_set_long_size(tep, 8);
	tep_set_file_bigendian(tep, tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
	CHECK_EQ(tep_parse_event(tep, fork_fmt, sizeof(fork_fmt) - 1, "sched"), 0);
	CHECK_EQ(tep_parse_event(tep, newtask_fmt, sizeof(newtask_fmt) - 1, "task"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d) {
		tep_free(tep);
		return;
	}
	memset(rec, 0, sizeof(rec));
	put(rec, 0, 205, 2);
	put(rec, 4, 500, 4); /* the parent's task */
	put(rec, 8, 501, 4); /* the child */
	memcpy(rec + 12, "java", 5);
	put(rec, 32, 0x3d0f00, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 42, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_NEWTASK);
	CHECK_EQ(ev.pid, 500);
	CHECK_EQ(ev.child_pid, 501);
	CHECK(ev.clone_flags == 0x3d0f00);
	CHECK_EQ(pt_raw_to_event(&ev, 1, 777, &e), 0);
	CHECK(e.type == PT_EV_NEWTASK && e.child_pid == 501 && e.clone_flags == 0x3d0f00 &&
	      e.ts_ns == 777);
	/* cut short: not decoded */
	CHECK_EQ(pt_raw_decode(d, rec, 36, &ev), 0);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

static void test_no_events(void)
{
	struct tep_handle *tep = tep_alloc();
	struct pt_raw_decoder *d = NULL;

	CHECK_EQ(pt_raw_decoder_new(tep, &d), -ENOENT);
	CHECK(d == NULL);
	tep_free(tep);
}

/* The one raw record -> event conversion: times by type, comms of a fork. */
static void test_to_event(void)
{
	struct pt_raw_event raw = {.type = PT_EV_EXIT, .pid = 7, .depth = 3, .calltime = 1000,
				   .rettime = 1500, .overrun = 2, .in_irq = true};
	struct pt_event ev;

	CHECK_EQ(pt_raw_to_event(&raw, 2, 9999, &ev), 0);
	CHECK_EQ(ev.type, PT_EV_EXIT);
	CHECK_EQ(ev.cpu, 2);
	CHECK_EQ(ev.pid, 7);
	CHECK_EQ(ev.depth, 3);
	CHECK_EQ(ev.ts_ns, 1500);
	CHECK_EQ(ev.call_ns, 1000);
	CHECK_EQ(ev.dur_ns, 500);
	CHECK_EQ(ev.overrun, 2);
	CHECK(ev.in_irq && !ev.func && !ev.comm);
	raw.rettime = 900; /* the clock went back: no duration */
	pt_raw_to_event(&raw, 2, 9999, &ev);
	CHECK_EQ(ev.dur_ns, PT_NO_TIME);

	raw = (struct pt_raw_event){.type = PT_EV_ENTRY, .pid = 7, .depth = 1, .calltime = 5};
	pt_raw_to_event(&raw, 0, 4242, &ev);
	CHECK_EQ(ev.overrun, -1);
	CHECK_EQ(ev.ts_ns, 4242);
	CHECK_EQ(ev.dur_ns, PT_NO_TIME);
	CHECK_EQ(ev.call_ns, PT_NO_TIME);

	raw = (struct pt_raw_event){.type = PT_EV_FORK, .pid = 7, .child_pid = 8,
				    .parent_comm = "sh", .child_comm = "ls"};
	pt_raw_to_event(&raw, 1, 77, &ev);
	CHECK_EQ(ev.ts_ns, 77);
	CHECK_EQ(ev.child_pid, 8);
	CHECK(ev.comm == raw.parent_comm && ev.child_comm == raw.child_comm);
	CHECK_EQ(ev.depth, -1);

	raw.type = PT_EV_LOST;
	CHECK_EQ(pt_raw_to_event(&raw, 1, 77, &ev), -EINVAL);
}

static const char kprobe_fmt[] =
	"name: copy_page_range\n"
	"ID: 1571\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\n"
	"print fmt: \"(%lx)\", REC->__probe_ip\n";

static const char kretprobe_fmt[] =
	"name: copy_page_range_ret\n"
	"ID: 1572\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long __probe_func;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:unsigned long __probe_ret_ip;\toffset:16;\tsize:8;\tsigned:0;\n"
	"\n"
	"print fmt: \"(%lx <- %lx)\", REC->__probe_func, REC->__probe_ret_ip\n";

/* The fields of an entry probe that reads the forking task's counters, after the common ones */
#define COUNTER_FIELDS                                                                             \
	"\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n"                       \
	"\tfield:u64 pt_task;\toffset:16;\tsize:8;\tsigned:0;\n"                                    \
	"\tfield:u64 pt_niv;\toffset:24;\tsize:8;\tsigned:0;\n"                                     \
	"\tfield:u64 pt_runs;\toffset:32;\tsize:8;\tsigned:0;\n"                                    \
	"\tfield:u64 pt_wait;\toffset:40;\tsize:8;\tsigned:0;\n"

/* The entry probe that reads the forking task's counters, as Debian 6.1 gave its format */
static const char counter_fmt[] =
	"name: wake_up_new_task\n"
	"ID: 1367\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	COUNTER_FIELDS
	"\n"
	"print fmt: \"(%lx) pt_task=%Lu pt_niv=%Lu pt_runs=%Lu pt_wait=%Lu\", REC->__probe_ip, "
	"REC->pt_task, REC->pt_niv, REC->pt_runs, REC->pt_wait\n";

/* Its records carry the task's counters into the event; a record cut
 * inside them is refused; a probe without them carries none. */
static void test_counter_probe(void)
{
	struct tep_handle *tep = new_tep(exit_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event raw;
	struct pt_event ev;
	unsigned char rec[48] = {0};

	CHECK_EQ(tep_parse_event(tep, counter_fmt, sizeof(counter_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(tep_parse_event(tep, kprobe_fmt, sizeof(kprobe_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	CHECK_EQ(pt_raw_decoder_add_probes(d, "ptescope"), 2);
	put(rec, 0, 1367, 2);
	put(rec, 4, 169, 4);
	put(rec, 8, 0xffffffff810a1230ull, 8);
	put(rec, 16, 0xffff888004d21a00ull, 8);
	put(rec, 24, 43, 8);
	put(rec, 32, 104, 8);
	put(rec, 40, 16003501, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 48, &raw), 1);
	CHECK(raw.type == PT_EV_ENTRY && raw.func == 0xffffffff810a1230ull);
	CHECK(raw.ctr.task == 0xffff888004d21a00ull && raw.ctr.nivcsw == 43);
	CHECK(raw.ctr.pcount == 104 && raw.ctr.run_delay == 16003501);
	CHECK_EQ(pt_raw_to_event(&raw, 0, 9000, &ev), 0);
	CHECK(ev.ctr.task == raw.ctr.task && ev.ctr.run_delay == 16003501);
	CHECK_EQ(pt_raw_decode(d, rec, 44, &raw), 0); /* cut inside pt_wait */
	put(rec, 0, 1571, 2);
	CHECK_EQ(pt_raw_decode(d, rec, 16, &raw), 1);
	CHECK(raw.ctr.task == 0);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

/* dup_mmap's probe with the parent's memory (capture_plan.c site_args) after
 * the task's counters: the six fields into the site; cut short, refused. */
static const char parent_mm_fmt[] =
	"name: dup_mmap\n"
	"ID: 1365\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	COUNTER_FIELDS
	"\tfield:s64 pt_prss0;\toffset:48;\tsize:8;\tsigned:1;\n"
	"\tfield:s64 pt_prss1;\toffset:56;\tsize:8;\tsigned:1;\n"
	"\tfield:s64 pt_prss2;\toffset:64;\tsize:8;\tsigned:1;\n"
	"\tfield:s64 pt_prss3;\toffset:72;\tsize:8;\tsigned:1;\n"
	"\tfield:s64 pt_ppte;\toffset:80;\tsize:8;\tsigned:1;\n"
	"\tfield:s32 pt_pmaps;\toffset:88;\tsize:4;\tsigned:1;\n"
	"\n"
	"print fmt: \"(%lx) pt_task=%Lu\", REC->__probe_ip, REC->pt_task\n";

static void test_parent_mm_probe(void)
{
	struct tep_handle *tep = new_tep(exit_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event raw;
	struct pt_event ev;
	unsigned char rec[96] = {0};

	CHECK_EQ(tep_parse_event(tep, parent_mm_fmt, sizeof(parent_mm_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	CHECK_EQ(pt_raw_decoder_add_probes(d, "ptescope"), 1);
	put(rec, 0, 1365, 2);
	put(rec, 4, 169, 4);
	put(rec, 8, 0xffffffff810a1230ull, 8);
	put(rec, 16, 0xffff888004d21a00ull, 8);
	put(rec, 48, 1000, 8);			/* file pages */
	put(rec, 56, 16384, 8);			/* anon */
	put(rec, 64, 0, 8);			/* swap entries */
	put(rec, 72, (uint64_t)-3, 8);		/* shmem: a per-CPU sum below zero */
	put(rec, 80, 40960, 8);			/* page-table bytes */
	put(rec, 88, 13, 4);			/* VMAs */
	CHECK_EQ(pt_raw_decode(d, rec, 92, &raw), 1);
	CHECK(raw.has_site && raw.site.has_parent_mm && !raw.site.has_vma);
	CHECK(raw.site.parent_rss[0] == 1000 && raw.site.parent_rss[1] == 16384);
	CHECK(raw.site.parent_rss[3] == -3 && raw.site.parent_pte == 40960);
	CHECK_EQ(raw.site.parent_maps, 13);
	CHECK(raw.ctr.task == 0xffff888004d21a00ull);
	CHECK_EQ(pt_raw_to_event(&raw, 0, 9000, &ev), 0);
	CHECK(ev.site && ev.site->has_parent_mm && ev.site->parent_maps == 13);
	CHECK_EQ(pt_raw_decode(d, rec, 90, &raw), 0); /* cut inside pt_pmaps */
	pt_raw_decoder_free(d);
	tep_free(tep);
}

/* Live capture's kprobe events (Debian 6.1's formats): entry and return of a
 * function, by address, no depth, no kernel times; other groups ignored. */
static void test_kprobes(void)
{
	struct tep_handle *tep = new_tep(exit_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event raw;
	struct pt_event ev;
	unsigned char rec[32] = {0};

	CHECK_EQ(tep_parse_event(tep, kprobe_fmt, sizeof(kprobe_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(tep_parse_event(tep, kretprobe_fmt, sizeof(kretprobe_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	put(rec, 0, 1571, 2);
	put(rec, 4, 96, 4);
	put(rec, 8, 0xffffffff81234564ull, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 16, &raw), 0); /* not added yet */
	CHECK_EQ(pt_raw_decoder_add_probes(d, "other"), 0);
	CHECK_EQ(pt_raw_decoder_add_probes(d, "ptescope"), 2);
	CHECK_EQ(pt_raw_decode(d, rec, 16, &raw), 1);
	CHECK_EQ(raw.type, PT_EV_ENTRY);
	CHECK_EQ(raw.pid, 96);
	CHECK_EQ(raw.depth, -1);
	CHECK(raw.func == 0xffffffff81234564ull);
	CHECK_EQ(pt_raw_decode(d, rec, 12, &raw), 0); /* cut short */
	CHECK_EQ(pt_raw_to_event(&raw, 1, 5000, &ev), 0);
	CHECK(ev.type == PT_EV_ENTRY && ev.ts_ns == 5000 && ev.depth == -1);

	put(rec, 0, 1572, 2);
	put(rec, 16, 0xffffffff81000099ull, 8);
	CHECK_EQ(pt_raw_decode(d, rec, 24, &raw), 1);
	CHECK_EQ(raw.type, PT_EV_EXIT);
	CHECK(raw.func == 0xffffffff81234564ull);
	CHECK(raw.rettime == PT_NO_TIME && raw.overrun == -1);
	CHECK_EQ(pt_raw_to_event(&raw, 1, 7000, &ev), 0);
	/* returned at the record's time; the duration comes from the entry */
	CHECK(ev.type == PT_EV_EXIT && ev.ts_ns == 7000 && ev.depth == -1);
	CHECK(ev.call_ns == PT_NO_TIME && ev.dur_ns == PT_NO_TIME);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

/* The pass probes as the daemon defines them on 6.1 (callsite fixtures'
 * bookworm: pt_rss fetched as x64[2]), the end's id far from the start's
 * (beyond the table of ids: found by the scan). */
static const char pass_start_fmt[] =
	"name: cpr_pass_start\n"
	"ID: 1600\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:u64 pt_ptl;\toffset:16;\tsize:8;\tsigned:0;\n"
	"\n"
	"print fmt: \"(%lx) pt_ptl=0x%Lx\", REC->__probe_ip, REC->pt_ptl\n";

static const char pass_end_fmt[] =
	"name: cpr_pass_end\n"
	"ID: 2100\n"
	"format:\n"
	COMMON_FIELDS
	"\n"
	"\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n"
	"\tfield:u64 pt_ptl;\toffset:16;\tsize:8;\tsigned:0;\n"
	"\tfield:u64 pt_a;\toffset:24;\tsize:8;\tsigned:0;\n"
	"\tfield:u64 pt_b;\toffset:32;\tsize:8;\tsigned:0;\n"
	"\tfield:s32 pt_ret;\toffset:40;\tsize:4;\tsigned:1;\n"
	"\tfield:u64 pt_rss[2];\toffset:44;\tsize:16;\tsigned:0;\n"
	"\n"
	"print fmt: \"(%lx) pt_ptl=0x%Lx\", REC->__probe_ip, REC->pt_ptl\n";

/* Pass records decode whole, every field (the unchecked reads once the
 * record covers them all); one cut inside its fields is refused. */
static void test_pass_probes(void)
{
	struct tep_handle *tep = new_tep(exit_fmt);
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event raw;
	unsigned char st[24] = {0}, en[60] = {0};

	CHECK_EQ(tep_parse_event(tep, kprobe_fmt, sizeof(kprobe_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(tep_parse_event(tep, pass_start_fmt, sizeof(pass_start_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(tep_parse_event(tep, pass_end_fmt, sizeof(pass_end_fmt) - 1, "ptescope"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d)
		return;
	CHECK_EQ(pt_raw_decoder_add_probes(d, "ptescope"), 3);
	put(st, 0, 1600, 2);
	put(st, 2, 0x01, 1); /* interrupts off: a probe handler's, not the task's */
	put(st, 4, 812, 4);
	put(st, 16, 0xffff888004d21a00ull, 8);
	CHECK_EQ(pt_raw_decode(d, st, 24, &raw), 1);
	CHECK(raw.type == PT_EV_PASS_START && raw.pid == 812 && !raw.in_irq);
	CHECK(raw.has_site && raw.site.ptl == 0xffff888004d21a00ull && raw.site.addr == 0);
	CHECK_EQ(pt_raw_decode(d, st, 20, &raw), 0); /* cut inside pt_ptl */

	put(en, 0, 2100, 2);
	put(en, 4, 812, 4);
	put(en, 16, 0xffff888004d21a00ull, 8);
	put(en, 24, 0x7f0000212000ull, 8);
	put(en, 32, 0x7f0000400000ull, 8);
	put(en, 40, (uint32_t)-12, 4);
	put(en, 44, 3ull | 200ull << 32, 8); /* rss[0] file 3, rss[1] anon 200 */
	put(en, 52, 0ull | 7ull << 32, 8);   /* rss[2] swap 0, rss[3] shmem 7 */
	CHECK_EQ(pt_raw_decode(d, en, 60, &raw), 1);
	CHECK(raw.type == PT_EV_PASS_END && raw.pid == 812);
	CHECK(raw.site.ptl == 0xffff888004d21a00ull);
	CHECK(raw.site.a == 0x7f0000212000ull && raw.site.b == 0x7f0000400000ull);
	CHECK_EQ(raw.site.ret, -12);
	CHECK(raw.site.rss[0] == 3 && raw.site.rss[1] == 200 && raw.site.rss[2] == 0 &&
	      raw.site.rss[3] == 7);
	CHECK_EQ(pt_raw_decode(d, en, 56, &raw), 0); /* cut inside rss[3] */
	CHECK_EQ(pt_raw_decode(d, en, 59, &raw), 0);
	put(en, 0, 2101, 2); /* no such event */
	CHECK_EQ(pt_raw_decode(d, en, 60, &raw), 0);
	pt_raw_decoder_free(d);
	tep_free(tep);
}

/* Common fields where no kernel puts them (the flags and the pid moved): read
 * through their formats, not where struct trace_entry has them. */
static void test_moved_common(void)
{
	static const char moved_fork[] =
		"name: sched_process_fork\n"
		"ID: 313\n"
		"format:\n"
		"\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
		"\tfield:unsigned char common_preempt_count;\toffset:2;\tsize:1;\tsigned:0;\n"
		"\tfield:unsigned char common_flags;\toffset:3;\tsize:1;\tsigned:0;\n"
		"\tfield:int common_other;\toffset:4;\tsize:4;\tsigned:1;\n"
		"\tfield:int common_pid;\toffset:8;\tsize:4;\tsigned:1;\n"
		"\n"
		"\tfield:char parent_comm[16];\toffset:12;\tsize:16;\tsigned:1;\n"
		"\tfield:pid_t parent_pid;\toffset:28;\tsize:4;\tsigned:1;\n"
		"\tfield:char child_comm[16];\toffset:32;\tsize:16;\tsigned:1;\n"
		"\tfield:pid_t child_pid;\toffset:48;\tsize:4;\tsigned:1;\n"
		"\n"
		"print fmt: \"comm=%s pid=%d child_comm=%s child_pid=%d\", REC->parent_comm, "
		"REC->parent_pid, REC->child_comm, REC->child_pid\n";
	struct tep_handle *tep = tep_alloc();
	struct pt_raw_decoder *d = NULL;
	struct pt_raw_event ev;
	unsigned char rec[52];

	tep_set_long_size(tep, 8);
	tep_set_file_bigendian(tep, tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
	CHECK_EQ(tep_parse_event(tep, moved_fork, sizeof(moved_fork) - 1, "sched"), 0);
	CHECK_EQ(pt_raw_decoder_new(tep, &d), 0);
	if (!d) {
		tep_free(tep);
		return;
	}
	memset(rec, 0, sizeof(rec));
	put(rec, 0, 313, 2);
	put(rec, 2, 0x09, 1); /* where trace_entry has its flags: here the preempt count */
	put(rec, 4, 77, 4);   /* where trace_entry has its pid */
	put(rec, 8, 4242, 4);
	memcpy(rec + 12, "redis-server", 13);
	put(rec, 28, 4242, 4);
	memcpy(rec + 32, "redis-rdb-bgsave", 16);
	put(rec, 48, 4243, 4);
	CHECK_EQ(pt_raw_decode(d, rec, 52, &ev), 1);
	CHECK_EQ(ev.type, PT_EV_FORK);
	CHECK_EQ(ev.pid, 4242);
	CHECK_EQ(ev.child_pid, 4243);
	CHECK(!strcmp(ev.parent_comm, "redis-server"));
	CHECK(!ev.in_irq);
	put(rec, 3, 0x08, 1); /* a hardirq, in the flags' own place */
	CHECK_EQ(pt_raw_decode(d, rec, 52, &ev), 1);
	CHECK(ev.in_irq);
	CHECK_EQ(pt_raw_decode(d, rec, 10, &ev), 0); /* the pid cut short */
	pt_raw_decoder_free(d);
	tep_free(tep);
}

int main(void)
{
	test_kprobes();
	test_counter_probe();
	test_parent_mm_probe();
	test_pass_probes();
	test_to_event();
	test_debian61();
	test_moved_fields();
	test_moved_common();
	test_dynamic_comms();
	test_newtask();
	test_no_events();
	TEST_DONE();
}
