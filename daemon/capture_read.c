/* SPDX-License-Identifier: MIT */
/*
 * Reading a set-up capture: the per-CPU trace_pipe_raw buffers opened
 * through libtracefs, split into records (rb_page.h, as kbuffer splits them) and decoded
 * (raw_decode.h; clone syscalls by field name), merged across CPUs in time
 * order (merge.h) and delivered to recon (graph mode) or sysfork (syscall
 * mode), with losses from the sub-buffers' marks and the per-CPU stats
 * files. One poll per tick on the main thread; sizing in capture.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tracefs/tracefs.h>

#include "formats.h"
#include "rb_page.h"
#include "capture_internal.h"
#include "yield.h"

#define MAX_QUEUE (1u << 18) /* decoded events waiting per CPU */
#define SLACK_NS 5000000ull  /* how far behind "now" an empty CPU may still commit */
#define STATS_EVERY_NS 1000000000ull /* per-CPU stats files read at most this often */
/* kprobe_profile read at most this often: 0.57 ms of the 6.1 guest a read, where
 * a CPU's stats file is 0.08, and its misses (a return probe out of its 512
 * instances, a probe hit inside another) are rare */
#define KPROBE_PROFILE_EVERY_NS 10000000000ull

static int64_t wall_minus_mono_ns(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * 1000000000ll +
	       ((int64_t)r.tv_nsec - (int64_t)m.tv_nsec);
}

static int read_size_file(struct pd_capture *c, const char *rel)
{
	char buf[64];
	long v;

	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0)
		return -1;
	v = strtol(buf, NULL, 10);
	return v > 0 && v <= 1024 ? (int)v : -1;
}

static void read_cpu_stats(struct pd_capture *c, struct cpu_buf *b)
{
	char rel[64], buf[1024];
	const char *p;

	snprintf(rel, sizeof(rel), "per_cpu/cpu%d/stats", b->cpu);
	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0)
		return;
	if ((p = strstr(buf, "\noverrun:")))
		b->overrun = strtoull(p + 9, NULL, 10);
	if ((p = strstr(buf, "dropped events:")))
		b->dropped = strtoull(p + 15, NULL, 10);
	if (!strncmp(buf, "entries:", 8))
		b->entries = strtoull(buf + 8, NULL, 10);
}

static int open_cpus(struct pd_capture *c, char *err, size_t errlen)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	int kb = read_size_file(c, "buffer_subbuf_size_kb");

	c->subbuf_size = kb > 0 ? kb * 1024 : getpagesize();
	if (n < 1 || n > 8192)
		n = 1;
	c->cpus = calloc((size_t)n, sizeof(*c->cpus));
	c->page = malloc((size_t)c->subbuf_size);
	if (!c->cpus || !c->page)
		return -ENOMEM;
	for (int cpu = 0; cpu < n; cpu++) {
		char rel[64], p[PATH_MAX];
		struct cpu_buf *b = &c->cpus[c->nr_cpus];
		int fd;

		snprintf(rel, sizeof(rel), "per_cpu/cpu%d/trace_pipe_raw", cpu);
		if (pd_tfs_path(c->tfs, rel, p, sizeof(p)))
			continue;
		fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* CPU not possible */
			snprintf(err, errlen, "cannot open %s: %s", p, strerror(errno));
			return -errno;
		}
		b->cpu = cpu;
		b->fd = fd;
		b->tc = tracefs_cpu_alloc_fd(fd, c->subbuf_size, true);
		if (!b->tc) {
			close(fd);
			snprintf(err, errlen, "libtracefs cannot read %s", p);
			return -ENOMEM;
		}
		c->nr_cpus++;
		read_cpu_stats(c, b);
		b->base_overrun = b->overrun;
		b->base_dropped = b->dropped;
	}
	if (!c->nr_cpus) {
		snprintf(err, errlen, "no per_cpu/cpuN/trace_pipe_raw under %s",
			 pd_tfs_dir(c->tfs));
		return -ENOENT;
	}
	c->st.cpus = c->nr_cpus;
	c->drained = calloc((size_t)c->nr_cpus, sizeof(*c->drained));
	if (!c->drained || pd_merge_new(c->nr_cpus, MAX_QUEUE, &c->merge))
		return -ENOMEM;
	return 0;
}

static int load_events(struct pd_capture *c, char *err, size_t errlen)
{
	/* only the events this mode reads: parsing every syscall format, or all
	 * of kallsyms as libtracefs does, took seconds at start (formats.h) */
	static const char *const graph[] = {"ftrace/funcgraph_entry", "ftrace/funcgraph_exit",
					    "sched/sched_process_fork", "sched/sched_switch",
					    "task/task_newtask", NULL};
	static const char *const sys[] = {"sched/sched_process_fork", "task/task_newtask",
					  "syscalls/sys_enter_clone",
					  "syscalls/sys_exit_clone",  "syscalls/sys_enter_clone3",
					  "syscalls/sys_exit_clone3", "syscalls/sys_enter_fork",
					  "syscalls/sys_exit_fork",   "syscalls/sys_enter_vfork",
					  "syscalls/sys_exit_vfork",  NULL};
	char kpn[2 * MAX_FUNCS + 2][96];
	const char *kp[2 * MAX_FUNCS + 6] = {"sched/sched_process_fork", "sched/sched_switch",
					     "task/task_newtask"};
	int ret, nkp = 3;

	for (int i = 0; c->kprobes && i < c->nr_funcs; i++) {
		pd_kprobe_event(kpn[2 * i], sizeof(kpn[0]), c->group, c->funcs[i], false);
		pd_kprobe_event(kpn[2 * i + 1], sizeof(kpn[0]), c->group, c->funcs[i], true);
		kp[nkp++] = kpn[2 * i];
		kp[nkp++] = kpn[2 * i + 1];
	}
	if (c->pass_sites) {
		snprintf(kpn[2 * MAX_FUNCS], sizeof(kpn[0]), "%s/" PT_RAW_PASS_START_EVENT,
			 c->group);
		snprintf(kpn[2 * MAX_FUNCS + 1], sizeof(kpn[0]), "%s/" PT_RAW_PASS_END_EVENT,
			 c->group);
		kp[nkp++] = kpn[2 * MAX_FUNCS];
		kp[nkp++] = kpn[2 * MAX_FUNCS + 1];
	}
	ret = pd_formats_load(pd_tfs_dir(c->tfs), c->mode == PD_CAPTURE_SYSCALL ? sys
						 : c->kprobes		     ? kp
									     : graph,
			      &c->tep, err, errlen);
	if (ret)
		return ret;
	if (pt_raw_decoder_new(c->tep, &c->dec) || !pt_raw_decoder_has_fork(c->dec) ||
	    (c->mode == PD_CAPTURE_GRAPH && !c->kprobes && !pt_raw_decoder_has_graph(c->dec))) {
		snprintf(err, errlen, "the event formats lack sched_process_fork%s",
			 c->mode == PD_CAPTURE_GRAPH ? " or funcgraph_entry/exit" : "");
		return -ENOTSUP;
	}
	if (c->kprobes && pt_raw_decoder_add_probes(c->dec, c->group) !=
			      2 * c->nr_funcs + (c->pass_sites ? 2 : 0)) {
		snprintf(err, errlen, "the formats of the %s kprobe events are not readable",
			 c->group);
		return -ENOTSUP;
	}
	for (int i = 0; i < 4; i++) {
		char name[32];
		struct tep_event *e;

		c->sys_enter[i] = c->sys_exit[i] = -1;
		if (c->mode != PD_CAPTURE_SYSCALL)
			continue;
		snprintf(name, sizeof(name), "sys_enter_%s", sys_names[i]);
		if ((e = tep_find_event_by_name(c->tep, "syscalls", name)))
			c->sys_enter[i] = e->id;
		snprintf(name, sizeof(name), "sys_exit_%s", sys_names[i]);
		if ((e = tep_find_event_by_name(c->tep, "syscalls", name)) &&
		    (c->exit_ret[i] = tep_find_field(e, "ret")))
			c->sys_exit[i] = e->id;
	}
	return 0;
}

/* A clone-family syscall entry (1) or exit (2, its return value in @ret) of
 * syscall mode, or 0 for any other event. */
static int decode_sys(const struct pd_capture *c, struct tep_record *rec, int64_t *ret)
{
	int type = tep_data_type(c->tep, rec);

	for (int k = 0; k < 4; k++) {
		if (type == c->sys_enter[k])
			return 1;
		if (type == c->sys_exit[k]) {
			unsigned long long v = 0;
			struct tep_format_field *f = c->exit_ret[k];

			if (f->offset + f->size > rec->size ||
			    tep_read_number_field(f, rec->data, &v))
				return -1;
			*ret = f->size == 4 ? (int64_t)(int32_t)v : (int64_t)v;
			return 2;
		}
	}
	return 0;
}

/* Queues one record of queue @qi's CPU: 0, or -ENOSPC when its queue is full. */
static int queue_record(struct pd_capture *c, int qi, void *data, int size, uint64_t ts)
{
	struct tep_record rec = {.ts = ts, .cpu = c->cpus[qi].cpu, .data = data, .size = size};
	struct pt_raw_event raw;
	struct pd_qev *e;
	int64_t sret = 0;
	int sys = c->mode == PD_CAPTURE_SYSCALL ? decode_sys(c, &rec, &sret) : 0;

	if (sys < 0)
		return 0;
	if (!sys) {
		/* decoded where it is queued (a record is 256 bytes): no copy */
		struct pd_qev *slot = pd_merge_next(c->merge, qi);

		if (pt_raw_decode(c->dec, data, rec.size, slot ? &slot->raw : &raw) != 1)
			return 0;
		if (!slot || !(e = pd_merge_push(c->merge, qi, ts)))
			return -ENOSPC;
		e->kind = PD_Q_RAW;
	} else {
		if (!(e = pd_merge_push(c->merge, qi, ts)))
			return -ENOSPC;
		e->kind = sys == 1 ? PD_Q_SYS_ENTER : PD_Q_SYS_EXIT;
		e->pid = tep_data_pid(c->tep, &rec);
		e->ret = sret;
	}
	c->st.events++;
	if (c->st.first_ts_ns == PT_NO_TIME)
		c->st.first_ts_ns = ts;
	return 0;
}

/* Decodes one sub-buffer of queue @qi's CPU into its queue. A page the walk
 * doubts (rb_page.h: a record would reach outside it) ends there, its
 * remaining records counted as lost, number unknown. */
static int decode_page(struct pd_capture *c, int qi)
{
	struct pt_rb_page pg;
	long long missed;
	int r = pt_rb_load(&pg, c->page, (uint32_t)c->subbuf_size, sizeof(long)), ret;
	struct pd_qev *e;

	missed = r < 0 ? -1 : pt_rb_missed(&pg);
	if (missed) {
		if (!(e = pd_merge_push(c->merge, qi, r > 0 ? pg.ts : pd_merge_last_ts(c->merge, qi))))
			return -ENOSPC;
		e->kind = PD_Q_LOST;
		e->lost = missed > 0 ? (uint64_t)missed : 0;
		if (missed < 0)
			c->st.lost_unknown = true;
	}
	for (; r > 0; r = pt_rb_step(&pg))
		if ((ret = queue_record(c, qi, (void *)(pg.data + pg.index), (int)(pg.next - pg.index),
					pg.ts)))
			return ret;
	if (r < 0 && !missed) {
		if (!(e = pd_merge_push(c->merge, qi, pd_merge_last_ts(c->merge, qi))))
			return -ENOSPC;
		e->kind = PD_Q_LOST;
		e->lost = 0;
		c->st.lost_unknown = true;
	}
	return 0;
}

static int deliver(const struct pd_qev *q, int qi, void *ctx)
{
	struct pd_capture *c = ctx;
	int cpu = qi >= 0 ? c->cpus[qi].cpu : -1;
	struct pt_event ev;

	if (q->ts > c->st.last_ts_ns || c->st.last_ts_ns == PT_NO_TIME)
		c->st.last_ts_ns = q->ts;
	if (c->mode == PD_CAPTURE_SYSCALL) {
		switch (q->kind) {
		case PD_Q_SYS_ENTER:
			return pd_sysfork_enter(c->sysfork, q->pid, q->ts);
		case PD_Q_SYS_EXIT:
			return pd_sysfork_exit(c->sysfork, q->pid, q->ret, q->ts);
		case PD_Q_LOST:
			pd_sysfork_lost(c->sysfork);
			return 0;
		default:
			if (q->raw.type == PT_EV_NEWTASK)
				return pd_sysfork_newtask(c->sysfork, q->raw.pid, q->raw.child_pid,
							  q->raw.clone_flags);
			if (q->raw.type != PT_EV_FORK)
				return 0;
			return pd_sysfork_fork(c->sysfork, q->raw.pid, q->raw.parent_comm,
					       q->raw.child_pid, q->raw.child_comm, q->ts);
		}
	}
	if (q->kind == PD_Q_LOST) {
		pt_event_init(&ev, PT_EV_LOST);
		ev.cpu = cpu;
		ev.ts_ns = q->ts;
		ev.lost = q->lost;
		return recon_feed(&ev, c->recon);
	}
	/* the same record-to-event conversion as trace.dat replay */
	if (q->kind != PD_Q_RAW || pt_raw_to_event(&q->raw, cpu, q->ts, &ev))
		return 0;
	if (ev.type == PT_EV_ENTRY || ev.type == PT_EV_EXIT)
		ev.func = pd_ksyms_name(c->ksyms, q->raw.func, &ev.func_id);
	return recon_feed(&ev, c->recon);
}

/* Reads queue @qi's CPU until it is empty or its queue nearly full. 0 or -errno. */
static int read_cpu(struct pd_capture *c, int qi, char *err, size_t errlen)
{
	struct cpu_buf *b = &c->cpus[qi];
	int ret;

	b->drained = false;
	while (pd_merge_len(c->merge, qi) + (size_t)c->subbuf_size / 8 <= MAX_QUEUE) {
		int n = tracefs_cpu_read(b->tc, c->page, true);

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK &&
			    errno != ENODATA) {
				snprintf(err, errlen, "reading CPU %d: %s", b->cpu,
					 strerror(errno));
				return -errno;
			}
			b->drained = true;
			return 0;
		}
		pd_yield_point();
		if ((ret = decode_page(c, qi))) {
			snprintf(err, errlen, "CPU %d: event queue full", b->cpu);
			return ret;
		}
	}
	return 0;
}

/* Reads every CPU (bounded) and merges out what is safe; @final: everything. */
int pd_cap_read_all(struct pd_capture *c, bool final, char *err, size_t errlen)
{
	uint64_t now = pt_mono_ns();
	bool *drained = c->drained;
	int ret;

	for (int round = 0; round < 64; round++) {
		bool all_drained = true;

		for (int i = 0; i < c->nr_cpus; i++) {
			if ((ret = read_cpu(c, i, err, errlen)))
				return ret;
			drained[i] = c->cpus[i].drained;
			all_drained &= drained[i];
		}
		ret = pd_merge_out(c->merge,
				   pd_merge_safe_upto(c->merge, drained, now, SLACK_NS, final),
				   deliver, c);
		if (ret) {
			snprintf(err, errlen, "handing over forks: %s", strerror(-ret));
			return ret;
		}
		if (all_drained)
			break;
	}
	return 0;
}

/* Calls our kprobe events could not record (kprobe_profile's third column:
 * a return probe out of instances, a probe hit inside another), summed. */
static uint64_t kprobes_missed(struct pd_capture *c)
{
	char buf[4096], name[128];
	unsigned long long hits, missed, sum = 0;
	const char *p = buf;
	int n;

	if (!c->kprobes || pd_tfs_read(c->tfs, "kprobe_profile", buf, sizeof(buf)) <= 0)
		return 0;
	while (sscanf(p, "%127s %llu %llu%n", name, &hits, &missed, &n) == 3) {
		if (!strncmp(name, c->group, strlen(c->group)) && name[strlen(c->group)] == '/')
			sum += missed;
		p += n;
	}
	return sum;
}

void pd_cap_account_stats(struct pd_capture *c, bool kprobes)
{
	uint64_t over = 0, drop = 0;

	for (int i = 0; i < c->nr_cpus; i++) {
		read_cpu_stats(c, &c->cpus[i]);
		over += c->cpus[i].overrun - c->cpus[i].base_overrun;
		drop += c->cpus[i].dropped - c->cpus[i].base_dropped;
	}
	c->st.overrun = over;
	c->st.dropped = drop;
	if (kprobes) {
		c->st.kprobe_missed = kprobes_missed(c) - c->base_missed;
		c->kprobes_read_ns = pt_mono_ns();
	}
	c->st.lost = over + drop + c->st.kprobe_missed;
}

int pd_capture_poll(struct pd_capture *c, char *err, size_t errlen)
{
	int ret = pd_cap_read_all(c, false, err, errlen);
	uint64_t now = pt_mono_ns();

	if (ret)
		return ret;
	/* the stats files cost more to read than an idle buffer: once a second
	 * (a sub-buffer's own missed-events mark flags losses at once), and only
	 * after events were read: the kernel loses events (overrun, dropped,
	 * kprobe misses) only while recording them, and what it records we
	 * read. Their printing was over half of an idle daemon's CPU.
	 * kprobe_profile once in ten seconds (KPROBE_PROFILE_EVERY_NS) */
	if (now - c->stats_read_ns < STATS_EVERY_NS || c->st.events == c->stats_events)
		return 0;
	c->stats_read_ns = now;
	c->stats_events = c->st.events;
	pd_cap_account_stats(c, now - c->kprobes_read_ns >= KPROBE_PROFILE_EVERY_NS);
	if (c->st.lost > c->stats_lost_seen) {
		/* the stats files saw losses: forks in flight cannot be whole */
		struct pd_qev q = {.ts = c->st.last_ts_ns,
				   .kind = PD_Q_LOST,
				.lost = c->st.lost - c->stats_lost_seen};

		c->stats_lost_seen = c->st.lost;
		if ((ret = deliver(&q, -1, c))) {
			snprintf(err, errlen, "handing over forks: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int count_fork(const struct pt_fork *f, void *ctx)
{
	struct pd_capture *c = ctx;

	c->st.forks++;
	pd_yield_point();
	return c->o.on_fork(f, c->o.ctx);
}

static pt_caps graph_caps(const struct pd_capture *c)
{
	pt_caps caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT;

	for (int i = 0; i < c->nr_funcs; i++)
		caps |= PT_CAP(pt_role_of(c->funcs[i]));
	if (c->sched_switch)
		caps |= PT_CAP_SWITCH;
	if (c->switch_window)
		caps |= PT_CAP_SWITCH_WINDOW;
	if (c->task_ctr)
		caps |= PT_CAP_TASK_CTR;
	if (c->pass_sites)
		caps |= PT_CAP_PASS_SITES;
	return caps & ~PT_CAP(PT_ROLE_OTHER);
}

/* An instance cannot be removed while its buffers are open: close them first. */
void pd_cap_close_cpus(struct pd_capture *c)
{
	for (int i = 0; i < c->nr_cpus; i++) {
		if (c->cpus[i].tc)
			tracefs_cpu_free_fd(c->cpus[i].tc);
		if (c->cpus[i].fd >= 0)
			close(c->cpus[i].fd);
		c->cpus[i].tc = NULL;
		c->cpus[i].fd = -1;
	}
}

/* Once tracefs is set up: formats, buffers, the consumer, a clean buffer,
 * tracing on. 0 or -errno with @err. */
int pd_cap_begin_reading(struct pd_capture *c, char *err, size_t errlen)
{
	uint64_t t0 = pt_mono_ns();
	int ret;

	c->clock_offset_ns = wall_minus_mono_ns();
	if ((ret = load_events(c, err, errlen)) || (ret = open_cpus(c, err, errlen)))
		return ret;
	took("loading event formats and opening the per-CPU buffers", t0);
	if (c->mode == PD_CAPTURE_GRAPH) {
		struct recon_opts ro = {.on_fork = count_fork,
					.ctx = c,
					.caps_known = true,
					.caps = graph_caps(c),
					.child_rss_slack = c->site_child ? c->child_slack : -1};

		ret = recon_new(&ro, &c->recon);
	} else {
		ret = pd_sysfork_new(count_fork, c, pt_mono_ns(), 1000000000ull, &c->sysfork);
	}
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	/* start clean: what an earlier run left in our buffer is not ours to count */
	if ((ret = pd_tfs_write(c->tfs, "trace", "", err, errlen)))
		return ret;
	c->base_missed = kprobes_missed(c);
	for (int i = 0; i < c->nr_cpus; i++) {
		read_cpu_stats(c, &c->cpus[i]);
		c->cpus[i].base_overrun = c->cpus[i].overrun;
		c->cpus[i].base_dropped = c->cpus[i].dropped;
	}
	return pd_tfs_write(c->tfs, "tracing_on", "1", err, errlen);
}
