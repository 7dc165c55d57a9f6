/* SPDX-License-Identifier: MIT */
/*
 * The order of ptescoped's tracefs writes, against a fake tracefs (a
 * directory of plain files laid out like /sys/kernel/tracing). Every write
 * goes through tfs.h's observer into a model of what the kernel would hook:
 * the current tracer and, per filter file, how many names it holds (none =
 * every function). A write that widens a filter (empties it, or adds a name
 * to a non-empty one) while a tracer other than nop is set fails the test:
 * on a real kernel that moment hooks every function (6.1 soft-locked, 6.12
 * oopsed when the old stop did it).
 *
 * Covered: graph setup at every detail level, with and without pids, then
 * stop (restore); a takeover of another tool's tracer (--force) and its
 * return; a killed run repaired by the next one. Also that the checker
 * itself flags the old, unsafe order.
 *
 * Fork detail by kprobes: the model also keeps kprobe_events as the kernel
 * does (a definition creates events/GROUP/EVENT, "-:GROUP/EVENT" removes
 * it) and flags what the kernel refuses or what would hurt others: removing
 * an enabled event, truncating kprobe_events (every tool's probes), a tracer
 * set at any moment, the group enabled before the plan's last write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture_plan.h"
#include "fakefs.h"
#include "tfs.h"
#include "check.h"

static const char *const filters[] = {"set_ftrace_filter", "set_graph_function", "set_ftrace_pid"};
#define NR_FILTERS 3

struct model {
	const char *dir; /* the fake tracefs */
	char tracer[32];
	int names[NR_FILTERS]; /* 0: the filter is empty (everything) */
	int probes;	       /* set_ftrace_filter's function probes: truncating keeps them */
	char probe[8][128];
	int probe_off_at, switch_off_at; /* write numbers: last probe removal, sched_switch off */
	int writes, violations;
	char first[512];
	/* kprobe events defined (GROUP/EVENT) and whether enabled */
	char kprobe[16][64];
	bool kp_on[16];
	int kprobes, kp_on_at; /* write number of the last enabling */
	bool tracer_set;       /* a tracer other than nop was written */
	bool by_index; /* set_ftrace_filter lists an index written to it as its function's name */
};

static void violation(struct model *m, const char *what, const char *rel, const char *value)
{
	if (!m->violations++)
		snprintf(m->first, sizeof(m->first), "write %d: %s (%s '%.*s')", m->writes, what,
			 rel, (int)strcspn(value, "\n"), value);
}

/* Lists kprobe_events in the fake as the kernel would: the others' line, then ours. */
static void kprobes_relist(struct model *m, const char *others)
{
	char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", others);

	for (int i = 0; i < m->kprobes && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "p:%s x\n", m->kprobe[i]);
	put(m->dir, "kprobe_events", buf);
}

#define OTHER_KPROBE "p:kprobes/other do_sys_openat2\n"

/* kprobe_events and events/GROUP/...: what the kernel does with each write */
static bool kprobe_observe(struct model *m, const char *rel, const char *value, bool append)
{
	char ev[128], p[700];
	const char *c = strchr(value, ':');
	size_t l = c ? strcspn(c + 1, " \n") : 0;

	if (!strcmp(rel, "kprobe_events")) {
		if (!append) {
			violation(m, "kprobe_events truncated: every tool's probes go", rel, value);
			return true;
		}
		snprintf(ev, sizeof(ev), "%.*s", (int)l, c ? c + 1 : "");
		if (value[0] == '-') {
			for (int i = 0; i < m->kprobes; i++) {
				if (strcmp(m->kprobe[i], ev))
					continue;
				if (m->kp_on[i])
					violation(m, "an enabled kprobe event removed", rel, value);
				m->kprobes--;
				memmove(m->kprobe[i], m->kprobe[i + 1], (size_t)(m->kprobes - i) * 64);
				memmove(&m->kp_on[i], &m->kp_on[i + 1], (size_t)(m->kprobes - i));
				snprintf(p, sizeof(p), "%s/events/%s/enable", m->dir, ev);
				unlink(p);
				snprintf(p, sizeof(p), "%s/events/%s", m->dir, ev);
				rmdir(p);
			}
		} else if (m->kprobes < 16) {
			snprintf(m->kprobe[m->kprobes], 64, "%.63s", ev);
			m->kp_on[m->kprobes++] = false;
			*strchr(ev, '/') = 0;
			snprintf(p, sizeof(p), "events/%s", ev);
			mk(m->dir, p);
			snprintf(p, sizeof(p), "events/%s/enable", ev);
			put(m->dir, p, "0\n");
			snprintf(p, sizeof(p), "events/%.*s", (int)l, c + 1);
			mk(m->dir, p);
			snprintf(p, sizeof(p), "events/%.*s/enable", (int)l, c + 1);
			put(m->dir, p, "0\n");
		}
		kprobes_relist(m, OTHER_KPROBE);
		return true;
	}
	for (int i = 0; i < m->kprobes; i++) {
		size_t g = strcspn(m->kprobe[i], "/");

		snprintf(ev, sizeof(ev), "events/%s/enable", m->kprobe[i]);
		snprintf(p, sizeof(p), "events/%.*s/enable", (int)g, m->kprobe[i]);
		if (!strcmp(rel, ev) || !strcmp(rel, p)) {
			m->kp_on[i] = value[0] == '1';
			if (value[0] == '1')
				m->kp_on_at = m->writes;
		}
	}
	return false;
}

static void probe_write(struct model *m, const char *value)
{
	size_t l = strcspn(value, "\n");

	if (value[0] != '!') {
		if (m->probes < 8)
			snprintf(m->probe[m->probes++], sizeof(m->probe[0]), "%.*s", (int)l, value);
		return;
	}
	for (int i = 0; i < m->probes; i++)
		if (!strncmp(m->probe[i], value + 1, l - 1) &&
		    (!m->probe[i][l - 1] || m->probe[i][l - 1] == ':')) {
			memmove(m->probe[i], m->probe[i + 1], (size_t)(m->probes - i - 1) * 128);
			m->probes--;
			break;
		}
	/* the kernel lists neither the removed probe nor the "!" command */
	if (m->dir) {
		char keep[4096], *v = get(m->dir, "set_ftrace_filter");
		size_t n = 0;

		for (; v && *v;) {
			size_t k = strcspn(v, "\n");

			if (v[0] != '!' && !(k >= l - 1 && !strncmp(v, value + 1, l - 1) &&
					     (k == l - 1 || v[l - 1] == ':')) &&
			    n + k + 1 < sizeof(keep)) {
				memcpy(keep + n, v, k);
				n += k;
				keep[n++] = '\n';
			}
			v += k + (v[k] == '\n');
		}
		keep[n] = 0;
		put(m->dir, "set_ftrace_filter", keep);
	}
}

/* After a truncation the kernel still lists the probes: so does the fake. */
static void probes_relist(struct model *m)
{
	char p[1024];
	FILE *f;

	snprintf(p, sizeof(p), "%s/set_ftrace_filter", m->dir);
	if (!m->dir || !(f = fopen(p, "a")))
		return;
	for (int i = 0; i < m->probes; i++)
		fprintf(f, "%s\n", m->probe[i]);
	fclose(f);
}

/* The fake index of a candidate function: 100 + its place in the fork level's list. */
static unsigned fake_index(void *ctx, const char *name)
{
	const char *const *c = pd_plan_candidates(PD_DETAIL_FORK);

	(void)ctx;
	for (unsigned i = 0; c[i]; i++)
		if (!strcmp(c[i], name))
			return 100 + i;
	return 0;
}

/* As the kernel does: the index just appended to set_ftrace_filter reads back as its name. */
static void index_to_name(struct model *m)
{
	const char *const *c = pd_plan_candidates(PD_DETAIL_FORK);
	char buf[4096];
	const char *v = get(m->dir, "set_ftrace_filter");
	size_t n = v ? strlen(v) : 0, start;
	unsigned long idx;

	if (!n || n >= sizeof(buf))
		return;
	memcpy(buf, v, n + 1);
	if (buf[n - 1] == '\n')
		buf[--n] = 0;
	start = n;
	while (start && buf[start - 1] != '\n')
		start--;
	idx = strtoul(buf + start, NULL, 10);
	for (unsigned long i = 0; c[i]; i++)
		if (i + 100 == idx)
			snprintf(buf + start, sizeof(buf) - start, "%s\n", c[i]);
	put(m->dir, "set_ftrace_filter", buf);
}

static void observe(void *ctx, const char *rel, const char *value, bool append, int result,
		    uint64_t ns)
{
	struct model *m = ctx;

	(void)ns;
	m->writes++;
	if (result)
		return;
	if (append && m->dir && *value && value[strlen(value) - 1] != '\n') {
		/* tracefs lists what was appended one per line; a plain file would not */
		char p[1024];
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", m->dir, rel);
		if ((f = fopen(p, "a"))) {
			fputc('\n', f);
			fclose(f);
		}
	}
	if (append && m->by_index && !strcmp(rel, "set_ftrace_filter") && value[0] >= '0' &&
	    value[0] <= '9' && !strchr(value, ':'))
		index_to_name(m);
	if (!strcmp(rel, "current_tracer")) {
		snprintf(m->tracer, sizeof(m->tracer), "%.*s", (int)strcspn(value, "\n"), value);
		m->tracer_set |= strcmp(m->tracer, "nop") != 0;
		return;
	}
	if (kprobe_observe(m, rel, value, append))
		return;
	if (!strcmp(rel, "events/sched/sched_switch/enable") && !strcmp(value, "0"))
		m->switch_off_at = m->writes;
	if (!strcmp(rel, "set_ftrace_filter") && value[0] == '!')
		m->probe_off_at = m->writes;
	if (!strcmp(rel, "set_ftrace_filter") && strchr(value, ':')) {
		/* a function probe hooks its function whatever the tracer: only
		 * "!KEY" removes it, as the kernel does */
		probe_write(m, value);
		return;
	}
	if (!strcmp(rel, "set_ftrace_filter") && !append)
		probes_relist(m);
	for (int i = 0; i < NR_FILTERS; i++) {
		bool widens;

		if (strcmp(rel, filters[i]))
			continue;
		if (append)
			widens = m->names[i] > 0; /* one more name in a list */
		else
			widens = !*value && m->names[i] > 0; /* emptied: every function */
		if (widens && strcmp(m->tracer, "nop")) {
			if (!m->violations++)
				snprintf(m->first, sizeof(m->first),
					 "write %d: %s %s '%s' while current_tracer is %s",
					 m->writes, append ? "appended to" : "wrote", rel, value,
					 m->tracer);
		}
		m->names[i] = append ? m->names[i] + (*value != 0) : (*value != 0);
	}
}

/* ---------------------------------------------------------- fake tracefs */

/* A top level as a fresh boot has it; @tracer and @filter: another tool's. */
static void fake_tracefs(const char *t, const char *tracer, const char *filter)
{
	mkdir(t, 0700);
	mk(t, "instances");
	mk(t, "options");
	mk(t, "events");
	mk(t, "events/sched");
	mk(t, "events/sched/sched_process_fork");
	mk(t, "events/sched/sched_switch");
	put(t, "current_tracer", tracer);
	put(t, "tracing_on", "1\n");
	put(t, "trace_clock", "[local] global counter mono\n");
	put(t, "buffer_size_kb", "7 (expanded: 1408)\n");
	put(t, "set_ftrace_filter", filter);
	put(t, "set_graph_function", "#### all functions enabled ####\n");
	put(t, "set_ftrace_pid", "no pid\n");
	put(t, "set_event", "");
	put(t, "options/funcgraph-irqs", "1\n");
	put(t, "events/sched/sched_process_fork/enable", "0\n");
	put(t, "events/sched/sched_switch/enable", "0\n");
	put(t, "events/sched/sched_switch/filter", "none\n");
	put(t, "kprobe_events", OTHER_KPROBE);
	put(t, "options/record-cmd", "1\n");
}

static bool yes(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return true;
}

/* Everything but dup_mmap (inlined, as on 6.12) */
static bool no_dup_mmap(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "dup_mmap") != 0;
}

static void model_init(struct model *m, const char *t)
{
	memset(m, 0, sizeof(*m));
	m->dir = t;
	snprintf(m->tracer, sizeof(m->tracer), "%.*s", (int)strcspn(get(t, "current_tracer"), "\n"),
		 get(t, "current_tracer"));
	for (int i = 0; i < NR_FILTERS; i++) {
		const char *v = get(t, filters[i]);

		m->names[i] = v && *v && *v != '#' && strncmp(v, "no pid", 6);
	}
	for (const char *v = get(t, "set_ftrace_filter"); v && *v;) {
		size_t l = strcspn(v, "\n");

		if (memchr(v, ':', l) && m->probes < 8)
			snprintf(m->probe[m->probes++], sizeof(m->probe[0]), "%.*s", (int)l, v);
		v += l + (v[l] == '\n');
	}
}

/* Whether @p writes @value (NULL: anything) to @rel. */
static bool plan_has(const struct pd_plan *p, const char *rel, const char *value)
{
	for (int i = 0; i < p->nr; i++)
		if (!strcmp(p->step[i].rel, rel) && (!value || !strcmp(p->step[i].value, value)))
			return true;
	return false;
}

static void plan_for(enum pd_detail d, const int *pids, size_t nr, struct pd_plan *p)
{
	struct pd_plan_in in = {.detail = d,
				.traceable = yes,
				.buffer_kb = 4096,
				.pids = pids,
				.nr_pids = nr,
				.preempt_mask = 256};
	char err[256];

	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)));
}

/* ----------------------------------------------------------------- tests */

static void test_checker_catches_old_order(const char *dir)
{
	char t[512], state[600], err[256];
	struct pd_tfs *a;
	struct model m;

	snprintf(t, sizeof(t), "%s/old", dir);
	snprintf(state, sizeof(state), "%s/old-state", dir);
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	model_init(&m, t);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_tfs_append(a, "set_ftrace_filter", "kernel_clone", err, sizeof(err)));
	CHECK(!pd_tfs_write(a, "current_tracer", "function_graph", err, sizeof(err)));
	CHECK(m.violations == 0);
	/* what the old stop did: the filter back to empty, the tracer still set */
	CHECK(!pd_tfs_write(a, "set_ftrace_filter", "", err, sizeof(err)));
	CHECK(m.violations == 1);
	pd_tfs_free(a);
}

static void cycle(const char *t, const char *state, enum pd_detail d, const int *pids, size_t nr)
{
	char err[512], before[6][FAKEFS_READ_MAX];
	const char *files[6] = {"current_tracer",     "set_ftrace_filter",
				"set_graph_function", "set_ftrace_pid",
				"tracing_on",	      "events/sched/sched_switch/enable"};
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_tfs *a;
	struct model m;

	for (int i = 0; i < 6; i++)
		snprintf(before[i], sizeof(before[i]), "%s", get(t, files[i]));
	model_init(&m, t);
	plan_for(d, pids, nr, p);
	CHECK(p->nr_funcs > 0 && !strcmp(p->funcs[0], "kernel_clone") && p->sched_switch);
	/* sched_switch armed per fork at fork detail for every task, on throughout otherwise */
	CHECK(p->switch_window == (d == PD_DETAIL_FORK && !nr));
	CHECK(plan_has(p, "set_ftrace_filter", PD_SWITCH_ARM) == p->switch_window);
	CHECK(plan_has(p, "set_ftrace_filter", PD_SWITCH_DISARM) == p->switch_window);
	CHECK(plan_has(p, "events/sched/sched_switch/enable", "1") == !p->switch_window);
	CHECK(plan_has(p, "events/sched/sched_switch/enable", "0") == p->switch_window);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	if (pd_plan_apply(a, p, err, sizeof(err))) {
		fprintf(stderr, "apply: %s\n", err);
		test_failures++;
	}
	CHECK(!strcmp(m.tracer, "function_graph"));
	CHECK(!strcmp(get(t, "events/sched/sched_switch/filter"), "prev_state & 256"));
	CHECK(m.probes == 2 * p->switch_window);
	CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	if (m.violations)
		fprintf(stderr, "detail %d, %zu pids: %s\n", (int)d, nr, m.first);
	CHECK(m.violations == 0);
	CHECK(m.probes == 0);
	/* a removed enable_event probe that fired last leaves the event on: it is
	 * written off after the probes are gone */
	if (p->switch_window)
		CHECK(m.probe_off_at && m.switch_off_at > m.probe_off_at);
	/* the files read back as they were (the pid file's and filters' empty forms
	 * are written back as empty) */
	CHECK(!strncmp(get(t, "current_tracer"), before[0], strcspn(before[0], "\n")));
	CHECK(!strcmp(get(t, "events/sched/sched_switch/filter"), "0"));
	CHECK(!strcmp(get(t, "tracing_on"), "1"));
	pd_tfs_free(a);
	free(p);
}

static void test_cycles(const char *dir)
{
	static const int pids[] = {123, 456};
	char t[512], state[600];

	snprintf(t, sizeof(t), "%s/top", dir);
	snprintf(state, sizeof(state), "%s/state/tracefs-state", dir);
	for (int d = PD_DETAIL_FORK; d <= PD_DETAIL_PTE; d++) {
		/* afresh each time: plain files do not read back as tracefs does */
		fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
		cycle(t, state, (enum pd_detail)d, NULL, 0);
		fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
		cycle(t, state, (enum pd_detail)d, pids, 2);
	}
	CHECK(!strcmp(get(t, "set_ftrace_filter"), ""));
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
}

/* --force: another tool's function tracer with its filter is taken over and given back */
static void test_takeover(const char *dir)
{
	char t[512], state[600], err[512];
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_tfs *a;
	struct model m;

	snprintf(t, sizeof(t), "%s/force", dir);
	snprintf(state, sizeof(state), "%s/force-state", dir);
	fake_tracefs(t, "function\n", "foo\nbar\nbaz:traceoff:unlimited\n");
	model_init(&m, t);
	CHECK(m.probes == 1);
	plan_for(PD_DETAIL_FORK, NULL, 0, p);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_plan_apply(a, p, err, sizeof(err)));
	CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	if (m.violations)
		fprintf(stderr, "takeover: %s\n", m.first);
	CHECK(m.violations == 0);
	CHECK(!strcmp(get(t, "current_tracer"), "function"));
	/* the other tool's probe stays, listed after the names; ours went */
	CHECK(m.probes == 1);
	CHECK(!strcmp(get(t, "set_ftrace_filter"), "baz:traceoff:unlimited\nfoo\nbar\n"));
	pd_tfs_free(a);
	free(p);
}

/* SIGKILL: nothing restored; the next start repairs in the same safe order */
static void test_repair(const char *dir)
{
	char t[512], state[600], err[512], msg[1024];
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_tfs *a;
	struct model m;

	snprintf(t, sizeof(t), "%s/kill", dir);
	snprintf(state, sizeof(state), "%s/kill-state", dir);
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	plan_for(PD_DETAIL_FORK, NULL, 0, p);
	model_init(&m, t);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_plan_apply(a, p, err, sizeof(err)));
	pd_tfs_free(a); /* killed */
	CHECK(!strcmp(get(t, "current_tracer"), "function_graph"));
	model_init(&m, t);
	CHECK(m.probes == 2);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) > 0);
	if (m.violations)
		fprintf(stderr, "repair: %s\n", m.first);
	CHECK(m.violations == 0);
	CHECK(!strcmp(get(t, "current_tracer"), "nop"));
	CHECK(!strcmp(get(t, "set_ftrace_filter"), ""));
	CHECK(!strncmp(get(t, "events/sched/sched_switch/enable"), "0", 1));
	CHECK(m.probes == 0);
	pd_tfs_free(a);
	free(p);
}

/* --preemptions=no: the plan enables no sched_switch at all */
static void test_no_preemptions(void)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 1024};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];

	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)));
	CHECK(!p->sched_switch);
	for (int i = 0; i < p->nr; i++)
		CHECK(!strstr(p->step[i].rel, "sched_switch") && !strstr(p->step[i].value, "sched_switch"));
	free(p);
}

static bool all_but_disarm(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, PD_SWITCH_DISARM_FUNC) != 0;
}

/* No traceable wake_up_new_task to disarm it: sched_switch stays on throughout */
static void test_no_disarm(void)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = all_but_disarm,
				.buffer_kb = 1024, .preempt_mask = 256};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];

	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)));
	CHECK(p->sched_switch && !p->switch_window);
	CHECK(plan_has(p, "events/sched/sched_switch/enable", "1"));
	CHECK(!plan_has(p, "set_ftrace_filter", PD_SWITCH_ARM));
	free(p);
}

/* A kernel's traceable functions (docs/kernels.md, probed), NULL-terminated. */
static bool in_list(void *ctx, const char *name)
{
	for (const char *const *n = ctx; *n; n++)
		if (!strcmp(*n, name))
			return true;
	return false;
}

static bool hooks(const struct pd_plan *p, const char *name)
{
	for (int i = 0; i < p->nr_funcs; i++)
		if (!strcmp(p->funcs[i], name))
			return true;
	return false;
}

/* The functions hooked follow what each kernel can trace, never its version:
 * only traceable ones, rt kernels' PTE locks instead of the raw spinlocks
 * (which exist there too), the lock-mapping helpers of 6.12/7.2 never. */
static void test_plan_per_kernel(void)
{
	static const char *const trixie[] = {"kernel_clone",
					     "copy_process",
					     "copy_page_range",
					     "_raw_spin_lock",
					     "_raw_spin_unlock",
					     "__cond_resched",
					     "__pte_alloc",
					     "add_swap_count_continuation",
					     "copy_huge_pmd",
					     "copy_hugetlb_page_range",
					     "vm_normal_page",
					     "__pte_offset_map_lock",
					     NULL};
	static const char *const trixie_rt[] = {"kernel_clone",
						"copy_process",
						"copy_page_range",
						"_raw_spin_lock",
						"_raw_spin_unlock",
						"rt_spin_lock",
						"rt_spin_unlock",
						"__cond_resched",
						"__pte_alloc",
						"add_swap_count_continuation",
						"copy_hugetlb_page_range",
						"vm_normal_page",
						"__pte_offset_map_lock",
						NULL};
	static const char *const bookworm_rt[] = {"kernel_clone",
						  "copy_process",
						  "dup_mmap",
						  "copy_page_range",
						  "_raw_spin_lock",
						  "rt_spin_lock",
						  "rt_spin_unlock",
						  "__pte_alloc",
						  "add_swap_count_continuation",
						  "copy_hugetlb_page_range",
						  "vm_normal_page",
						  NULL};
	static const char *const sid[] = {"kernel_clone",
					  "copy_process",
					  "dup_mmap",
					  "copy_page_range",
					  "_raw_spin_lock",
					  "_raw_spin_unlock",
					  "__cond_resched",
					  "__pte_alloc",
					  "copy_huge_pmd",
					  "copy_hugetlb_page_range",
					  "vm_normal_page",
					  "pte_offset_map_lock",
					  NULL};
	const char *const *kernels[] = {trixie, trixie_rt, bookworm_rt, sid};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];

	for (size_t k = 0; p && k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		bool rt = in_list((void *)kernels[k], "rt_spin_lock");
		struct pd_plan_in in = {.detail = PD_DETAIL_PTE,
					.traceable = in_list,
					.ctx = (void *)kernels[k],
					.buffer_kb = 1024};

		CHECK(!pd_plan_graph(&in, p, err, sizeof(err)));
		CHECK(!strcmp(p->funcs[0], "kernel_clone"));
		for (int i = 0; i < p->nr_funcs; i++)
			CHECK(in_list((void *)kernels[k], p->funcs[i]));
		CHECK_EQ(hooks(p, "_raw_spin_lock"), !rt);
		CHECK_EQ(hooks(p, "_raw_spin_unlock"), !rt);
		CHECK_EQ(hooks(p, "rt_spin_lock"), rt);
		CHECK_EQ(hooks(p, "rt_spin_unlock"), rt);
		CHECK(hooks(p, "vm_normal_page") && hooks(p, "__pte_alloc"));
		CHECK(!hooks(p, "__pte_offset_map_lock") && !hooks(p, "pte_offset_map_lock"));
		CHECK_EQ(hooks(p, "dup_mmap"), in_list((void *)kernels[k], "dup_mmap"));
		in.detail = PD_DETAIL_FORK;
		CHECK(!pd_plan_graph(&in, p, err, sizeof(err)));
		CHECK(!hooks(p, "rt_spin_lock") && !hooks(p, "_raw_spin_lock"));
	}
	free(p);
}

/* Fork detail by kprobes: no tracer ever, the group enabled last, stop (or
 * the repair of a killed run) removes our events once they are off, keeps
 * the others' probe, and gives record-cmd back */
static void kprobe_cycle(const char *dir, const char *name, bool killed,
			 const struct pd_task_offs *task, const struct pd_cs_plan *cs)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 4096,
				.preempt_mask = 256, .kprobes = true, .task = task, .cs = cs};
	char t[512], state[600], err[512], msg[1024];
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_tfs *a;
	struct model m;

	snprintf(t, sizeof(t), "%s/%s", dir, name);
	snprintf(state, sizeof(state), "%s/%s-state", dir, name);
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	model_init(&m, t);
	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)));
	CHECK(p->kprobes && hooks(p, "wake_up_new_task"));
	/* preemptions: from the task's counters where the offsets are known, no
	 * probe of the scheduler then; else sched_switch armed per fork */
	CHECK_EQ(p->task_ctr, task != NULL);
	CHECK_EQ(p->switch_window, task == NULL);
	CHECK_EQ(plan_has(p, "events/sched/sched_switch/filter", NULL), task == NULL);
	CHECK(!strcmp(p->step[p->nr - 1].rel, "events/" PD_KPROBE_GROUP "/enable"));
	CHECK(plan_has(p, "options/record-cmd", "0"));
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_plan_apply(a, p, err, sizeof(err)));
	CHECK(m.kprobes == 2 * p->nr_funcs + (cs ? 2 : 0) && m.kp_on_at == m.writes && m.kp_on[0]);
	CHECK_EQ(p->pass_sites, cs != NULL);
	CHECK(m.probes == (task ? 0 : 2) && !strcmp(get(t, "options/record-cmd"), "0"));
	if (killed) {
		pd_tfs_free(a);
		CHECK(!pd_tfs_new(t, state, &a));
		pd_tfs_set_observer(a, observe, &m);
		CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) > 0);
	} else {
		CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	}
	if (m.violations)
		fprintf(stderr, "kprobes %s: %s\n", name, m.first);
	CHECK(m.violations == 0 && !m.tracer_set);
	CHECK(m.kprobes == 0 && m.probes == 0);
	CHECK(!strcmp(get(t, "kprobe_events"), OTHER_KPROBE));
	CHECK(!strcmp(get(t, "options/record-cmd"), "1"));
	CHECK(!strncmp(get(t, "events/sched/sched_switch/enable"), "0", 1));
	CHECK(!strcmp(get(t, "tracing_on"), "1"));
	pd_tfs_free(a);
	free(p);
}

/*
 * set_ftrace_filter by index: the functions' indices, a check of what the
 * filter took before any probe or the tracer, the probes by index too. A
 * kernel that took the indices as other functions fails the check with no
 * probe written and no tracer set, and the plan by names then works.
 */
static void test_indices(const char *dir)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .index = fake_index,
				.buffer_kb = 4096, .preempt_mask = 256};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char t[512], state[600], err[512], probe[96];
	int check_at = -1, first_probe = -1, tracer_at = -1;
	struct pd_tfs *a;
	struct model m;

	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)) && p->switch_window);
	for (int i = 0; i < p->nr; i++) {
		const struct pd_tfs_step *s = &p->step[i];

		if (s->check)
			check_at = i;
		else if (!strcmp(s->rel, "set_ftrace_filter") && strchr(s->value, ':') &&
			 first_probe < 0)
			first_probe = i;
		else if (!strcmp(s->rel, "set_ftrace_filter") && s->append)
			CHECK(s->value[0] >= '1' && s->value[0] <= '9'); /* an index, not a name */
		if (!strcmp(s->rel, "current_tracer") && !strcmp(s->value, "function_graph"))
			tracer_at = i;
	}
	CHECK(check_at > 0 && first_probe > check_at && tracer_at > check_at);
	snprintf(probe, sizeof(probe), "%u%s", fake_index(NULL, PD_SWITCH_ARM_FUNC),
		 PD_SWITCH_ARM_CMD);
	CHECK(plan_has(p, "set_ftrace_filter", probe));

	snprintf(t, sizeof(t), "%s/index", dir);
	snprintf(state, sizeof(state), "%s/index-state", dir);
	/* a kernel that lists what the indices name: the check passes */
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	model_init(&m, t);
	m.by_index = true;
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_plan_apply(a, p, err, sizeof(err)));
	CHECK(!strcmp(m.tracer, "function_graph") && m.probes == 2);
	CHECK(!pd_tfs_restore(a, err, sizeof(err)) && m.violations == 0 && m.probes == 0);
	pd_tfs_free(a);

	/* one that does not (plain files list the digits): stopped before any hook */
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	model_init(&m, t);
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(pd_plan_apply(a, p, err, sizeof(err)) == -ESTALE);
	CHECK(!strcmp(m.tracer, "nop") && m.probes == 0);
	in.index = NULL;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && plan_has(p, "set_ftrace_filter", PD_SWITCH_ARM));
	for (int i = 0; i < p->nr; i++)
		CHECK(!p->step[i].check);
	CHECK(!pd_plan_apply(a, p, err, sizeof(err)) && !strcmp(m.tracer, "function_graph"));
	CHECK(!pd_tfs_restore(a, err, sizeof(err)) && m.violations == 0 && m.probes == 0);
	pd_tfs_free(a);
	free(p);
}

static const struct pd_task_offs task_offs = {.cpr_src_arg = 2,
					       .wake_arg = 1,
					       .vm_mm = 64,
					       .owner = 1000,
					       .real_parent = 1500,
					       .nivcsw = 2000,
					       .pcount = 3000,
					       .run_delay = 3008,
					       .nivcsw_size = 8,
					       .pcount_size = 8,
					       .run_delay_size = 8};

/* The probes that read the forking task's counters: the task through
 * src_vma->vm_mm->owner at copy_page_range, through p->real_parent at
 * wake_up_new_task; each counter's type from its size; no other probe reads
 * any, and no return probe. */
static void test_counter_probes(void)
{
	struct pd_task_offs o = task_offs;
	struct pd_site_offs so = {0}; /* the oldmm parameters; nothing else read beside */
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 4096,
				.kprobes = true, .task = &o, .site = &so};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];
	int with = 0;

	o.nivcsw_size = 4;
	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)) && p->task_ctr);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/copy_page_range copy_page_range "
		       "pt_task=+1000(+64($arg2)):u64 pt_niv=+2000(+1000(+64($arg2))):u32 "
		       "pt_runs=+3000(+1000(+64($arg2))):u64 "
		       "pt_wait=+3008(+1000(+64($arg2))):u64\n"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/wake_up_new_task wake_up_new_task pt_task=+1500($arg1):u64 "
		       "pt_niv=+2000(+1500($arg1)):u32 pt_runs=+3000(+1500($arg1)):u64 "
		       "pt_wait=+3008(+1500($arg1)):u64\n"));
	for (int i = 0; i < p->nr; i++)
		with += strstr(p->step[i].value, "pt_task=") != NULL;
	CHECK_EQ(with, 2);
	/* where dup_mmap is a function of its own (its oldmm the second
	 * parameter), it reads them once a fork, and copy_page_range none */
	so.dup_old_arg = 2;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && p->task_ctr && p->ctr_at_dup);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/dup_mmap dup_mmap pt_task=+1000($arg2):u64 "
		       "pt_niv=+2000(+1000($arg2)):u32 pt_runs=+3000(+1000($arg2)):u64 "
		       "pt_wait=+3008(+1000($arg2)):u64\n"));
	CHECK(plan_has(p, "kprobe_events", "p:ptescope/copy_page_range copy_page_range\n"));
	with = 0;
	for (int i = 0; i < p->nr; i++)
		with += strstr(p->step[i].value, "pt_task=") != NULL;
	CHECK_EQ(with, 2);
	/* where dup_mmap is inlined (6.12), uprobe_dup_mmap, which it calls once
	 * (oldmm its first parameter), is hooked to read them */
	in.traceable = no_dup_mmap;
	so.start_old_arg = 1;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && p->task_ctr && !p->ctr_at_dup &&
	      p->ctr_at_start);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/uprobe_dup_mmap uprobe_dup_mmap pt_task=+1000($arg1):u64 "
		       "pt_niv=+2000(+1000($arg1)):u32 pt_runs=+3000(+1000($arg1)):u64 "
		       "pt_wait=+3008(+1000($arg1)):u64\n"));
	CHECK(plan_has(p, "kprobe_events",
		       "r512:ptescope/uprobe_dup_mmap_ret uprobe_dup_mmap\n"));
	CHECK(plan_has(p, "kprobe_events", "p:ptescope/copy_page_range copy_page_range\n"));
	CHECK(!plan_has(p, "kprobe_events", "p:ptescope/dup_mmap dup_mmap\n"));
	/* ... and at detail fork only by kprobes for the counters: not without them */
	in.task = NULL;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && !p->ctr_at_start);
	for (int i = 0; i < p->nr_funcs; i++)
		CHECK(strcmp(p->funcs[i], "uprobe_dup_mmap") != 0);
	in.task = &o;
	/* ... and where its BTF is not known either: copy_page_range again */
	so.start_old_arg = 0;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && p->task_ctr && !p->ctr_at_dup &&
	      !p->ctr_at_start);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/copy_page_range copy_page_range "
		       "pt_task=+1000(+64($arg2)):u64 pt_niv=+2000(+1000(+64($arg2))):u32 "
		       "pt_runs=+3000(+1000(+64($arg2))):u64 "
		       "pt_wait=+3008(+1000(+64($arg2))):u64\n"));
	free(p);
}

/* The pass probes of 6.1.192 (tests/fixtures/callsite/bookworm) */
static const struct pd_cs_plan cs_plan = {
    .shape = PD_CS_SHAPE_LOCK2,
    .start_off = 0x706,
    .end_off = 0xae6,
    .start_args = "pt_ptl=%di:x64",
    .end_args = "pt_ptl=%di:x64 pt_a=+0x58(%sp):x64 pt_b=+0(%sp):x64 pt_ret=%bp:s32 "
		"pt_rss=+0x170(%sp):x64[2]"};

/* The pass probes' lines, and what their checks add to the entry probes: the
 * VMA at copy_page_range, the child's counters at wake_up_new_task. */
static void test_pass_probes(void)
{
	struct pd_site_offs so = {.cpr_src_arg = 2, .wake_arg = 1, .vma = true, .vm_start = 0,
				  .vm_end = 8, .child_rss = true, .task_mm = 1200,
				  .rss = {800, 808, 816, 824}};
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 4096,
				.kprobes = true, .cs = &cs_plan, .site = &so};
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_task_offs big = task_offs;
	char err[256];
	int start = -1, end = -1, enable = -1;

	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)) && p->pass_sites);
	CHECK(p->site_vma && p->site_child);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/cpr_pass_start copy_page_range+0x706 pt_ptl=%di:x64\n"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/cpr_pass_end copy_page_range+0xae6 pt_ptl=%di:x64 "
		       "pt_a=+0x58(%sp):x64 pt_b=+0(%sp):x64 pt_ret=%bp:s32 "
		       "pt_rss=+0x170(%sp):x64[2]\n"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/copy_page_range copy_page_range pt_vms=+0($arg2):x64 "
		       "pt_vme=+8($arg2):x64\n"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/wake_up_new_task wake_up_new_task pt_crss0=+800(+1200($arg1)):s64 "
		       "pt_crss1=+808(+1200($arg1)):s64 pt_crss2=+816(+1200($arg1)):s64 "
		       "pt_crss3=+824(+1200($arg1)):s64\n"));
	/* defined before the group is enabled, like every event of ours */
	for (int i = 0; i < p->nr; i++) {
		if (strstr(p->step[i].value, "cpr_pass_start"))
			start = i;
		if (strstr(p->step[i].value, "cpr_pass_end"))
			end = i;
		if (!strcmp(p->step[i].rel, "events/" PD_KPROBE_GROUP "/enable"))
			enable = i;
	}
	CHECK(start >= 0 && end > start && enable > end);
	/* no copy_page_range hooked (a kernel without it traceable): no pass probes */
	in.cs = NULL;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && !p->pass_sites && !p->site_vma);
	CHECK(!plan_has(p, "kprobe_events", "p:ptescope/cpr_pass_start copy_page_range+0x706 "
					    "pt_ptl=%di:x64\n"));
	/* offsets that do not fit a write are refused, never cut */
	in.cs = &cs_plan;
	in.task = &big;
	big.owner = big.vm_mm = big.nivcsw = big.pcount = big.run_delay = 4000000000u;
	big.real_parent = 4000000000u;
	big.cpr_src_arg = big.wake_arg = so.wake_arg = 2000000000;
	so.task_mm = so.rss[0] = so.rss[1] = so.rss[2] = so.rss[3] = 4000000000u;
	CHECK(pd_plan_graph(&in, p, err, sizeof(err)) == -E2BIG);
	free(p);
}

/* The parent's memory read as the fork begins: at dup_mmap through its
 * oldmm, else at uprobe_dup_mmap where that is hooked for the counters, else
 * nowhere (the /proc reader reads it); never at any other probe. */
static void test_parent_mm_probe(void)
{
	struct pd_task_offs o = task_offs;
	struct pd_site_offs so = {.rss = {800, 808, 816, 824},
				  .parent_mm = true,
				  .dup_old_arg = 2,
				  .start_old_arg = 1,
				  .pgtables = 900,
				  .map_count = 1300};
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 4096,
				.kprobes = true, .task = &o, .site = &so};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];
	int with = 0;

	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)) && p->parent_mm_at &&
	      !strcmp(p->parent_mm_at, "dup_mmap"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/dup_mmap dup_mmap pt_task=+1000($arg2):u64 "
		       "pt_niv=+2000(+1000($arg2)):u64 pt_runs=+3000(+1000($arg2)):u64 "
		       "pt_wait=+3008(+1000($arg2)):u64 pt_prss0=+800($arg2):s64 "
		       "pt_prss1=+808($arg2):s64 pt_prss2=+816($arg2):s64 pt_prss3=+824($arg2):s64 "
		       "pt_ppte=+900($arg2):s64 pt_pmaps=+1300($arg2):s32\n"));
	for (int i = 0; i < p->nr; i++)
		with += strstr(p->step[i].value, "pt_prss0=") != NULL;
	CHECK_EQ(with, 1);
	/* without the task's counters dup_mmap still reads it */
	in.task = NULL;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && p->parent_mm_at);
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/dup_mmap dup_mmap pt_prss0=+800($arg2):s64 "
		       "pt_prss1=+808($arg2):s64 pt_prss2=+816($arg2):s64 pt_prss3=+824($arg2):s64 "
		       "pt_ppte=+900($arg2):s64 pt_pmaps=+1300($arg2):s32\n"));
	/* dup_mmap inlined: uprobe_dup_mmap, hooked for the counters, reads it too */
	in.task = &o;
	in.traceable = no_dup_mmap;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && p->ctr_at_start && p->parent_mm_at &&
	      !strcmp(p->parent_mm_at, "uprobe_dup_mmap"));
	CHECK(plan_has(p, "kprobe_events",
		       "p:ptescope/uprobe_dup_mmap uprobe_dup_mmap pt_task=+1000($arg1):u64 "
		       "pt_niv=+2000(+1000($arg1)):u64 pt_runs=+3000(+1000($arg1)):u64 "
		       "pt_wait=+3008(+1000($arg1)):u64 pt_prss0=+800($arg1):s64 "
		       "pt_prss1=+808($arg1):s64 pt_prss2=+816($arg1):s64 pt_prss3=+824($arg1):s64 "
		       "pt_ppte=+900($arg1):s64 pt_pmaps=+1300($arg1):s32\n"));
	/* ... not hooked without the counters: nowhere, the /proc reader has it */
	in.task = NULL;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && !p->parent_mm_at);
	for (int i = 0; i < p->nr; i++)
		CHECK(!strstr(p->step[i].value, "pt_prss0="));
	/* nor where the BTF lacks a counter */
	in.traceable = yes;
	so.parent_mm = false;
	CHECK(!pd_plan_graph(&in, p, err, sizeof(err)) && !p->parent_mm_at);
	/* offsets that do not fit a write are refused, never cut */
	so.parent_mm = true;
	so.pgtables = so.map_count = so.rss[0] = so.rss[1] = so.rss[2] = so.rss[3] = 4000000000u;
	so.dup_old_arg = 2000000000;
	in.task = &o;
	o.owner = o.nivcsw = o.pcount = o.run_delay = 4000000000u;
	CHECK(pd_plan_graph(&in, p, err, sizeof(err)) == -E2BIG);
	free(p);
}

/*
 * Fork detail by kprobes in our instance: kprobe_events is the top level's
 * whatever the target (the events are defined there), it is saved although
 * the instance is the target, and stopping (or repairing a killed run)
 * removes the instance and our events, leaving the others' probes.
 */
static void kprobes_in_instance(const char *dir, bool killed)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_FORK, .traceable = yes, .buffer_kb = 4096,
				.kprobes = true, .task = &task_offs, .cs = &cs_plan,
				.instance = true};
	char t[512], state[600], err[512], msg[1024], inst[600];
	struct pd_plan *p = calloc(1, sizeof(*p));
	struct pd_tfs *a;
	struct model m;
	struct stat sb;

	snprintf(t, sizeof(t), "%s/inst-%d", dir, killed);
	snprintf(state, sizeof(state), "%s/inst-%d-state", dir, killed);
	snprintf(inst, sizeof(inst), "%s/instances/ptescoped", t);
	fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
	model_init(&m, t);
	CHECK(p && !pd_plan_graph(&in, p, err, sizeof(err)));
	/* an instance has neither record-cmd nor, until one is set, a tracer */
	CHECK(!plan_has(p, "options/record-cmd", NULL) && !plan_has(p, "current_tracer", NULL));
	CHECK(!pd_tfs_new(t, state, &a));
	pd_tfs_set_observer(a, observe, &m);
	CHECK(!pd_tfs_write(a, "options/record-cmd", "0", err, sizeof(err)));
	CHECK(!pd_tfs_use_instance(a, "ptescoped", err, sizeof(err)));
	/* the instance's files: what a new one has */
	put(inst, "tracing_on", "1\n");
	put(inst, "trace_clock", "[local] global counter mono\n");
	put(inst, "buffer_size_kb", "1408\n");
	/* defined at the top level; their events' files are the instance's too */
	for (int i = 0; i < p->nr; i++) {
		const struct pd_tfs_step *st = &p->step[i];
		int r;

		if (!strncmp(st->rel, "events/", 7)) {
			char d[700];

			snprintf(d, sizeof(d), "%s", st->rel);
			*strrchr(d, '/') = 0;
			for (char *q = d; (q = strchr(q + 1, '/'));) {
				*q = 0;
				mk(inst, d);
				*q = '/';
			}
			mk(inst, d);
			put(inst, st->rel, "0\n");
		}
		r = st->append ? pd_tfs_append(a, st->rel, st->value, err, sizeof(err))
			       : pd_tfs_write(a, st->rel, st->value, err, sizeof(err));
		if (r)
			fprintf(stderr, "step %d %s: %s\n", i, st->rel, err);
		CHECK_EQ(r, 0);
	}
	CHECK(strstr(get(t, "kprobe_events"), "cpr_pass_end") != NULL);
	snprintf(msg, sizeof(msg), "inst-%d-state", killed);
	CHECK(get(dir, msg) && strstr(get(dir, msg), "kprobe ptescope/cpr_pass_end") != NULL);
	CHECK(get(dir, msg) && strstr(get(dir, msg), "instance ptescoped") != NULL);
	CHECK(!strcmp(get(t, "tracing_on"), "1\n")); /* the top level's was not touched */
	/* the kernel removes an instance whole; the fake's is a directory: emptied */
	snprintf(msg, sizeof(msg), "rm -rf '%s'/*", inst);
	CHECK(!system(msg));
	if (killed) {
		pd_tfs_free(a);
		CHECK(!pd_tfs_new(t, state, &a));
		pd_tfs_set_observer(a, observe, &m);
		CHECK(pd_tfs_repair(a, NULL, msg, sizeof(msg)) > 0);
	} else {
		CHECK(!pd_tfs_restore(a, err, sizeof(err)));
	}
	CHECK(stat(inst, &sb) && errno == ENOENT);
	if (m.violations)
		fprintf(stderr, "kprobes in an instance: %s\n", m.first);
	CHECK(m.violations == 0 && !m.tracer_set && m.kprobes == 0);
	pd_tfs_free(a);
	CHECK(!strcmp(get(t, "kprobe_events"), OTHER_KPROBE));
	CHECK(!strcmp(get(t, "options/record-cmd"), "1"));
	free(p);
}

static void test_kprobes(const char *dir)
{
	struct pd_plan_in in = {.detail = PD_DETAIL_SECTION, .traceable = yes, .buffer_kb = 1024,
				.kprobes = true};
	struct pd_plan *p = calloc(1, sizeof(*p));
	char err[256];

	kprobe_cycle(dir, "kprobes", false, NULL, NULL);
	kprobe_cycle(dir, "kprobes-killed", true, NULL, NULL);
	kprobe_cycle(dir, "kprobes-counters", false, &task_offs, NULL);
	kprobe_cycle(dir, "kprobes-counters-killed", true, &task_offs, NULL);
	kprobe_cycle(dir, "kprobes-passes", false, &task_offs, &cs_plan);
	kprobe_cycle(dir, "kprobes-passes-killed", true, &task_offs, &cs_plan);
	test_counter_probes();
	test_pass_probes();
	test_parent_mm_probe();
	kprobes_in_instance(dir, false);
	kprobes_in_instance(dir, true);
	/* our own group's events left enabled (a run killed with its state file lost):
	 * the top level is busy, and the message says whose they are */
	{
		char t[512], state[600], what[512];
		struct pd_tfs *a;

		snprintf(t, sizeof(t), "%s/leftover", dir);
		snprintf(state, sizeof(state), "%s/leftover-state", dir);
		fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
		put(t, "set_event", PD_KPROBE_GROUP ":kernel_clone\n");
		CHECK(!pd_tfs_new(t, state, &a));
		CHECK(pd_tfs_check_top_free(a, what, sizeof(what)) == -EBUSY);
		CHECK(strstr(what, "ptescoped's own kprobe events") != NULL);
		pd_tfs_free(a);
	}
	/* an event in soft mode ("0*", another tool's probe) is given back as "0": "0*"
	 * cannot be written (EINVAL on 6.1) */
	{
		char t[512], state[600], e[512];
		struct pd_tfs *a;

		snprintf(t, sizeof(t), "%s/soft", dir);
		snprintf(state, sizeof(state), "%s/soft-state", dir);
		fake_tracefs(t, "nop\n", "#### all functions enabled ####\n");
		put(t, "events/sched/sched_switch/enable", "0*\n");
		CHECK(!pd_tfs_new(t, state, &a));
		CHECK(!pd_tfs_write(a, "events/sched/sched_switch/enable", "1", e, sizeof(e)));
		CHECK(!pd_tfs_restore(a, e, sizeof(e)));
		CHECK(!strcmp(get(t, "events/sched/sched_switch/enable"), "0"));
		pd_tfs_free(a);
	}
	/* deeper detail or pids are never kprobes */
	CHECK(p && pd_plan_graph(&in, p, err, sizeof(err)) == -EINVAL);
	free(p);
}

int main(void)
{
	char dir[] = "/tmp/ptescoped-order-XXXXXX", cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_checker_catches_old_order(dir);
	test_cycles(dir);
	test_takeover(dir);
	test_repair(dir);
	test_no_preemptions();
	test_no_disarm();
	test_plan_per_kernel();
	test_kprobes(dir);
	test_indices(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	TEST_DONE();
}
