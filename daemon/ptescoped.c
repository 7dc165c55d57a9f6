/* SPDX-License-Identifier: MIT */
/*
 * ptescoped: the daemon. Reads its configuration, opens the store (ingest),
 * starts live capture (capture.h) and the HTTP listener (api.h), tells
 * systemd it is ready only once all three are up, then runs one loop on the
 * main thread: a timerfd tick reads the trace buffers, commits the store
 * once a second and pets the watchdog; a signalfd turns SIGTERM/SIGINT into
 * an orderly stop (tracefs restored) and SIGHUP into a config reload.
 *
 * Investigations (investigate.h) run here too: one at a time, started by an
 * HTTP request handed over through a request slot and an eventfd (the HTTP
 * thread waits for the answer; it never stops or starts the capture), or by
 * the loop itself after a slow fork; they end on the tick when their time is
 * up. Starting or ending one restarts the capture (stop, start with the other
 * detail). Nothing of them is persisted: a restart starts the configured
 * default.
 *
 * The daemon's state lives in one struct on main's stack; the HTTP threads
 * see it only through the pd_core callbacks, under its mutex.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "api.h"
#include "capture.h"
#include "config.h"
#include "ingest.h"
#include "investigate.h"
#include "log.h"
#include "repair.h"
#include "spool.h"
#include "stats.h"
#include "store.h"
#include "tfs_lock.h"

/* An HTTP request for the main loop: one at a time (serial), answered under lock. */
struct inv_slot {
	pthread_mutex_t serial; /* held by the asking HTTP thread for the whole exchange */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int efd; /* eventfd: the main loop polls it */
	enum { SLOT_EMPTY, SLOT_ASKED, SLOT_TAKEN, SLOT_ANSWERED } state;
	bool end;		    /* end the current one, else start req */
	struct pd_inv_request req;
	unsigned status;
	json_t *body;
	char err[512];
	bool closing; /* the loop has stopped: answer 503 */
};

struct daemon {
	struct pd_config cfg;
	struct pd_tfs_lock *inst_lock; /* our tracefs instance's host-wide lock (repair.h) */
	int argc;
	char **argv;
	struct pd_metrics *metrics;
	struct pd_ingest *ingest;
	struct pd_capture *capture;
	struct pd_http *http;
	struct pd_spool *spool; /* accepted uploads until replayed (spool.h): DB-uploads */
	char kernel[128];
	uint64_t start_mono_ns;
	int64_t start_wall_ns;

	pthread_mutex_t lock; /* the status snapshot below, read by HTTP threads */
	enum pd_capture_mode mode;
	char reason[1400], where[128], functions[512], hooks[32];
	char preemptions[32]; /* how the running capture records them, "" not at all */
	/* the running capture's pass probes (capture.h pd_passes_info), copied */
	enum pd_passes passes;
	char passes_why[512], pass_build_id[41], pass_check[16];
	struct pd_cs_plan pass_plan;
	bool pass_cached;
	int pass_before_calls;
	uint64_t pass_mismatch; /* live forks flagged pass_mismatch (main thread) */
	char cache_dir[4096];	/* the state file's directory: pass plans by build id */
	unsigned buffer_kb;
	bool buffer_capped;	   /* buffer_kb cut by --buffer-total-mb */
	long nr_cpus_conf;	   /* CPUs with a ring buffer (configured) */
	uint64_t setup_lost;	   /* restarts because another tool took our setup apart */
	char setup_lost_why[512];  /* ... the last one's reason */
	uint64_t wd_usec;	   /* the unit's watchdog period (0: none) */
	struct pd_capture_stats cst;
	struct pd_cpu_stat *cpus; /* per-CPU counters as of the last snapshot */
	int nr_cpus;
	bool ready, capture_ok;
	enum pd_detail detail;	 /* the running capture's (an investigation's, or the default) */
	struct pd_inv_state inv; /* written by the main thread under lock */
	bool auto_pending;	 /* a slow fork asked for an automatic investigation */
	int auto_pid;

	struct inv_slot slot;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------- pd_core callbacks */

/* Per-CPU counters as /api/v1/status shows them. New reference. */
static json_t *cpus_json(const struct pd_cpu_stat *c, int n)
{
	json_t *a = json_array();

	for (int i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:I, s:I, s:I}", "cpu", c[i].cpu,
						   "overrun", (json_int_t)c[i].overrun, "dropped",
						   (json_int_t)c[i].dropped, "entries",
						   (json_int_t)c[i].entries));
	return a;
}

static const char *const passes_names[] = {
    [PD_PASSES_OFF] = "off",	       [PD_PASSES_PLANNED] = "planned",
    [PD_PASSES_ARMED] = "armed",       [PD_PASSES_UNKNOWN] = "unknown_code",
    [PD_PASSES_REFUSED] = "refused",
};

/* capture.passes of /api/v1/status. New reference. Under d->lock. */
static json_t *passes_json(const struct daemon *d)
{
	json_t *p = json_pack("{s:s, s:s?}", "state", passes_names[d->passes], "reason",
			      d->passes_why[0] ? d->passes_why : NULL);
	char site[64];

	if (!p || d->passes != PD_PASSES_ARMED)
		return p;
	snprintf(site, sizeof(site), "copy_page_range+%#x", d->pass_plan.start_off);
	json_object_set_new(p, "pass_start", json_string(site));
	snprintf(site, sizeof(site), "copy_page_range+%#x", d->pass_plan.end_off);
	json_object_set_new(p, "pass_end", json_string(site));
	json_object_set_new(p, "shape", json_string(d->pass_plan.shape == PD_CS_SHAPE_LOCK2
							? "two_locks"
							: "map_and_lock"));
	json_object_set_new(p, "start_args", json_string(d->pass_plan.start_args));
	json_object_set_new(p, "end_args", json_string(d->pass_plan.end_args));
	json_object_set_new(p, "kernel_build_id",
			    d->pass_build_id[0] ? json_string(d->pass_build_id) : json_null());
	json_object_set_new(p, "from_cache", json_boolean(d->pass_cached));
	json_object_set_new(p, "child_counters_check", json_string(d->pass_check));
	/* before the calls where the code allows: jump-optimizable by the kernel */
	json_object_set_new(p, "probes_before_calls", json_integer(d->pass_before_calls));
	return p;
}

static void core_status(void *ctx, json_t *st)
{
	struct daemon *d = ctx;
	struct pd_ingest_counts ic;
	struct stat sb;
	uint64_t pass_mismatch;
	json_t *cap, *live;

	pd_ingest_get_counts(d->ingest, &ic);
	pthread_mutex_lock(&d->lock);
	cap = json_pack("{s:s, s:s, s:s, s:b}", "mode", pd_capture_mode_name(d->mode), "requested",
			pd_capture_mode_name(d->cfg.capture), "reason", d->reason, "healthy",
			d->capture_ok);
	if (cap && d->mode != PD_CAPTURE_OFF) {
		json_object_set_new(cap, "tracefs", json_string(d->where));
		json_object_set_new(cap, "trace_clock", json_string("mono"));
		json_object_set_new(cap, "buffer_kb", json_integer(d->buffer_kb));
		json_object_set_new(cap, "buffer_total_kb",
				    json_integer((json_int_t)d->buffer_kb * (json_int_t)d->nr_cpus_conf));
		json_object_set_new(cap, "buffer_capped", json_boolean(d->buffer_capped));
		if (d->mode == PD_CAPTURE_GRAPH) {
			json_object_set_new(cap, "detail", json_string(pd_detail_name(d->detail)));
			json_object_set_new(cap, "default_detail",
					    json_string(pd_detail_name(d->cfg.detail)));
			json_object_set_new(cap, "functions", json_string(d->functions));
			json_object_set_new(cap, "hooks", json_string(d->hooks));
			json_object_set_new(cap, "preemptions", json_boolean(d->preemptions[0]));
			json_object_set_new(cap, "preemptions_by",
					    d->preemptions[0] ? json_string(d->preemptions)
							      : json_null());
			json_object_set_new(cap, "passes", passes_json(d));
		}
		json_object_set_new(cap, "events", json_integer((json_int_t)d->cst.events));
		json_object_set_new(cap, "lost_events", json_integer((json_int_t)d->cst.lost));
		json_object_set_new(cap, "lost_unknown", json_boolean(d->cst.lost_unknown));
		json_object_set_new(cap, "overrun", json_integer((json_int_t)d->cst.overrun));
		json_object_set_new(cap, "dropped", json_integer((json_int_t)d->cst.dropped));
		json_object_set_new(cap, "kprobe_missed",
				    json_integer((json_int_t)d->cst.kprobe_missed));
		json_object_set_new(cap, "forks", json_integer((json_int_t)d->cst.forks));
		json_object_set_new(cap, "setup_lost", json_integer((json_int_t)d->setup_lost));
		json_object_set_new(cap, "setup_lost_reason",
				    d->setup_lost ? json_string(d->setup_lost_why) : json_null());
		json_object_set_new(cap, "slow_fork_us",
				    json_integer((json_int_t)d->cfg.slow_fork_us));
		json_object_set_new(cap, "cpus", cpus_json(d->cpus, d->nr_cpus));
	}
	json_object_set_new(st, "investigation", pd_inv_status_json(&d->inv, mono_ns()));
	pass_mismatch = d->pass_mismatch;
	pthread_mutex_unlock(&d->lock);
	json_object_set_new(st, "version", json_string(PTESCOPE_VERSION));
	json_object_set_new(st, "kernel", json_string(d->kernel));
	json_object_set_new(st, "uptime_s",
			    json_real((double)(mono_ns() - d->start_mono_ns) / 1e9));
	json_object_set_new(st, "started_ns", json_integer(d->start_wall_ns));
	json_object_set_new(st, "capture", cap ? cap : json_null());
	json_object_set_new(st, "forks_stored",
			    json_integer((json_int_t)(ic.live_forks + ic.replay_forks)));
	live = json_pack("{s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "forks",
			 (json_int_t)ic.live_forks, "detail_dropped", (json_int_t)ic.live_detail_dropped,
			 "unknown_loop", (json_int_t)ic.live_unknown_loop, "source_id",
			 (json_int_t)ic.live_source_id, "parent_mem", ic.parent_mem, "parent_mem_reads",
			 (json_int_t)ic.parent_mem_reads, "parent_mem_skipped",
			 (json_int_t)ic.parent_mem_skipped, "parent_mem_late",
			 (json_int_t)ic.parent_mem_late, "queued", (json_int_t)ic.live_queued, "lost",
			 (json_int_t)ic.live_store_failed, "pass_mismatch", (json_int_t)pass_mismatch);
	json_object_set_new(st, "live", live);
	json_object_set_new(
		st, "replays",
		json_pack("{s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)ic.replays_queued,
			  "done", (json_int_t)ic.replays_done, "failed",
			  (json_int_t)ic.replays_failed, "skipped", (json_int_t)ic.replays_skipped,
			  "forks", (json_int_t)ic.replay_forks));
	json_object_set_new(st, "database",
			    json_pack("{s:s, s:I, s:b, s:I}", "path", d->cfg.db_path, "size_bytes",
				      (json_int_t)(stat(d->cfg.db_path, &sb) ? -1 : sb.st_size),
				      "healthy", ic.store_healthy, "write_failures",
				      (json_int_t)ic.store_write_failures));
}

/* An upload received in the spool: made a durable job before it is queued (and the 202). */
static int core_submit_replay(void *ctx, const char *path, const char *name, int64_t *job_id,
			      char *err, size_t errlen)
{
	struct daemon *d = ctx;
	char job[4096];
	int ret = pd_spool_commit(d->spool, path, name, job, sizeof(job), err, errlen);

	if (ret)
		return ret;
	ret = pd_ingest_submit_replay(d->ingest, job, name, true, job_id, err, errlen);
	if (ret)
		pd_spool_remove(d->spool, job); /* refused (503): not ours to keep */
	return ret;
}

static int resume_one(const char *path, const char *name, void *ctx)
{
	struct daemon *d = ctx;
	char err[256];
	int ret = pd_ingest_submit_replay(d->ingest, path, name, true, NULL, err, sizeof(err));

	if (ret)
		pd_warn("upload %s (%s): not resumed now (%s), left for the next start", name, path,
			err);
	else
		pd_info("resuming upload %s accepted before the last stop (%s)", name, path);
	return ret;
}

/* Uploads accepted before the last stop (or kill) and not replayed: queued again. */
static int resume_spool(struct daemon *d)
{
	int n = pd_spool_each(d->spool, resume_one, d);

	if (n < 0)
		pd_warn("upload spool %s: %s", pd_spool_dir(d->spool), strerror(-n));
	else if (n)
		pd_info("%d accepted upload(s) resumed from %s", n, pd_spool_dir(d->spool));
	return 0;
}

static bool core_healthy(void *ctx)
{
	struct daemon *d = ctx;
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = d->ready && d->capture_ok;
	pthread_mutex_unlock(&d->lock);
	return ok && pd_ingest_healthy(d->ingest);
}

/* Hands a request to the main loop and waits for its answer. */
static unsigned slot_ask(struct daemon *d, bool end, const struct pd_inv_request *req,
			 json_t **body, char *err, size_t errlen)
{
	struct inv_slot *sl = &d->slot;
	uint64_t one = 1;
	unsigned status;

	*body = NULL;
	pthread_mutex_lock(&sl->serial);
	pthread_mutex_lock(&sl->lock);
	if (sl->closing) {
		pthread_mutex_unlock(&sl->lock);
		pthread_mutex_unlock(&sl->serial);
		snprintf(err, errlen, "the daemon is stopping");
		return 503;
	}
	sl->end = end;
	if (req)
		sl->req = *req;
	sl->state = SLOT_ASKED;
	sl->body = NULL;
	sl->err[0] = 0;
	(void)!write(sl->efd, &one, sizeof(one));
	while (sl->state != SLOT_ANSWERED && !sl->closing)
		pthread_cond_wait(&sl->cond, &sl->lock);
	if (sl->state == SLOT_ANSWERED) {
		status = sl->status;
		*body = sl->body;
		snprintf(err, errlen, "%s", sl->err);
	} else {
		status = 503;
		snprintf(err, errlen, "the daemon is stopping");
	}
	sl->body = NULL;
	sl->state = SLOT_EMPTY;
	pthread_mutex_unlock(&sl->lock);
	pthread_mutex_unlock(&sl->serial);
	return status;
}

static unsigned core_investigate(void *ctx, const struct pd_inv_request *req, json_t **body,
				 char *err, size_t errlen)
{
	return slot_ask(ctx, false, req, body, err, errlen);
}

static unsigned core_end_investigation(void *ctx, json_t **body, char *err, size_t errlen)
{
	return slot_ask(ctx, true, NULL, body, err, errlen);
}

static json_t *core_investigations(void *ctx)
{
	struct daemon *d = ctx;
	json_t *o;

	pthread_mutex_lock(&d->lock);
	o = pd_inv_list_json(&d->inv, mono_ns());
	pthread_mutex_unlock(&d->lock);
	return o;
}

/* ------------------------------------------------------------------ helpers */

static void snapshot(struct daemon *d)
{
	struct pd_capture_stats st;
	int n;

	if (!d->capture)
		return;
	pd_capture_get_stats(d->capture, &st);
	n = pd_capture_cpu_stats(d->capture, NULL, 0);
	pthread_mutex_lock(&d->lock);
	if (n > d->nr_cpus) {
		struct pd_cpu_stat *c = realloc(d->cpus, (size_t)n * sizeof(*c));

		if (c)
			d->cpus = c;
		else
			n = d->nr_cpus;
	}
	pd_capture_cpu_stats(d->capture, d->cpus, n);
	d->nr_cpus = n;
	if (d->metrics && (st.events > d->cst.events || st.lost > d->cst.lost))
		pd_metrics_add_events(d->metrics, "live", st.events - d->cst.events,
				      st.lost > d->cst.lost ? st.lost - d->cst.lost : 0);
	d->cst = st;
	pthread_mutex_unlock(&d->lock);
}

static void set_capture_health(struct daemon *d, bool ok)
{
	pthread_mutex_lock(&d->lock);
	d->capture_ok = ok;
	pthread_mutex_unlock(&d->lock);
	if (d->metrics)
		pd_metrics_set_capture(d->metrics, pd_capture_mode_name(d->mode), ok);
}

static int split_comms(const char *list, char ***out, size_t *nr)
{
	char *copy, *tok, *save = NULL, **v;
	size_t n = 0;

	*out = NULL;
	*nr = 0;
	if (!list)
		return 0;
	copy = strdup(list);
	v = calloc(65, sizeof(*v));
	if (!copy || !v) {
		free(copy);
		free(v);
		return -ENOMEM;
	}
	for (tok = strtok_r(copy, ",", &save); tok && n < 64; tok = strtok_r(NULL, ",", &save))
		if (!(v[n++] = strdup(tok)))
			break;
	free(copy);
	*out = v;
	*nr = n;
	return 0;
}

static void free_comms(char **v, size_t nr)
{
	for (size_t i = 0; v && i < nr; i++)
		free(v[i]);
	free(v);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Every live fork passes here first: an investigation with a comm keeps only
 * that comm's forks and counts what it recorded; a slow fork may ask for an
 * automatic investigation (started by the loop after the poll, not here:
 * this runs inside pd_capture_poll).
 */
static int live_fork(const struct pt_fork *f, void *ctx)
{
	struct daemon *d = ctx;
	bool mismatch = false;
	uint64_t ns;

	pthread_mutex_lock(&d->lock);
	if (d->inv.active) {
		if (d->inv.cur.comm[0] && strcmp(d->inv.cur.comm, f->parent_comm)) {
			d->inv.cur.forks_other++;
			pthread_mutex_unlock(&d->lock);
			return 0;
		}
		d->inv.cur.forks++;
	} else if (d->cfg.auto_investigate_us && d->cfg.detail < PD_DETAIL_SECTION &&
		   !d->auto_pending && f->parent_pid > 0 && f->complete) {
		ns = pt_fork_total_ns(f);
		if (ns != PT_NO_TIME && ns > d->cfg.auto_investigate_us * 1000) {
			d->auto_pending = true;
			d->auto_pid = f->parent_pid;
		}
	}
	if ((f->flags & PT_FORK_PASS_MISMATCH) && !d->pass_mismatch++)
		mismatch = true;
	pthread_mutex_unlock(&d->lock);
	if (mismatch)
		pd_warn("fork of pid %d: the pass probes' self-check failed (%s): its passes, PTEs "
			"and lock breaks are null, flagged pass_mismatch (counted in /api/v1/status "
			"live.pass_mismatch; docs/kernels.md)",
			f->parent_pid, d->capture ? pd_capture_pass_mismatch(d->capture) : "?");
	return pd_ingest_live_fork(f, d->ingest);
}

/* Capture off, and why: the status's mode and reason, under d->lock (HTTP threads read them). */
__attribute__((format(printf, 2, 3))) static void set_capture_off(struct daemon *d, const char *fmt,
								  ...)
{
	va_list ap;

	va_start(ap, fmt);
	pthread_mutex_lock(&d->lock);
	d->mode = PD_CAPTURE_OFF;
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	pthread_mutex_unlock(&d->lock);
	va_end(ap);
}

/* Starts capture in @mode (an investigation asks for graph, not auto: no silent fallback). */
static int start_capture_at(struct daemon *d, enum pd_capture_mode mode, enum pd_detail detail,
			    const int *pids, size_t nr_pids)
{
	struct pd_capture_opts co = {.mode = mode,
				     .detail = detail,
				     .fork_hooks = d->cfg.fork_hooks,
				     .pass_probes = d->cfg.pass_probes,
				     .cache_dir = d->cache_dir,
				     .tracefs = d->cfg.tracefs,
				     .kernel_btf = d->cfg.kernel_btf,
				     .instance = d->cfg.instance,
				     .state_file = d->cfg.state_file,
				     .lock_dir = d->cfg.lock_dir,
				     .buffer_kb = d->cfg.buffer_kb,
				     .buffer_total_mb = d->cfg.buffer_total_mb,
				     .watermark_pct = d->cfg.watermark_pct,
				     .force = d->cfg.force,
				     .no_preemptions = !d->cfg.preemptions,
				     .pids = pids,
				     .nr_pids = nr_pids,
				     .on_fork = live_fork,
				     .ctx = d};
	struct pd_passes_info pi;
	const char *by;
	char err[1024];
	unsigned buffer_kb;
	bool capped;
	int ret;

	pthread_mutex_lock(&d->lock);
	memset(&d->cst, 0, sizeof(d->cst)); /* a new capture counts from 0 */
	d->passes = PD_PASSES_OFF;
	d->passes_why[0] = 0;
	d->detail = detail;
	pthread_mutex_unlock(&d->lock);
	if (mode == PD_CAPTURE_OFF) {
		set_capture_off(d, "capture off: serving and replaying only");
		pd_info("%s", d->reason);
		return 0;
	}
	ret = pd_capture_start(&co, &d->capture, err, sizeof(err));
	if (ret) {
		if (mode != PD_CAPTURE_AUTO) {
			pd_err("%s", err);
			return ret;
		}
		set_capture_off(d, "auto chose off: %s", err);
		pd_warn("%s", d->reason);
		return 0;
	}
	by = pd_capture_preemptions(d->capture);
	pd_capture_passes(d->capture, &pi);
	buffer_kb = pd_capture_buffer_kb(d->capture, &capped);
	/* the status's description of the capture: written under the lock core_status reads it */
	pthread_mutex_lock(&d->lock);
	d->mode = pd_capture_mode(d->capture);
	snprintf(d->reason, sizeof(d->reason), "%s", pd_capture_reason(d->capture));
	snprintf(d->where, sizeof(d->where), "%s", pd_capture_where(d->capture));
	snprintf(d->functions, sizeof(d->functions), "%s", pd_capture_functions(d->capture));
	snprintf(d->hooks, sizeof(d->hooks), "%s", pd_capture_hooks(d->capture));
	snprintf(d->preemptions, sizeof(d->preemptions), "%s", by ? by : "");
	d->buffer_kb = buffer_kb;
	d->buffer_capped = capped;
	d->passes = pi.state;
	snprintf(d->passes_why, sizeof(d->passes_why), "%s", pi.why ? pi.why : "");
	if (pi.plan)
		d->pass_plan = *pi.plan;
	snprintf(d->pass_build_id, sizeof(d->pass_build_id), "%s", pi.build_id ? pi.build_id : "");
	snprintf(d->pass_check, sizeof(d->pass_check), "%s", pi.child_check ? pi.child_check : "");
	d->pass_cached = pi.cached;
	d->pass_before_calls = pi.before_calls;
	pthread_mutex_unlock(&d->lock);
	pd_notice("capture %s in %s, %u KiB per CPU, trace clock mono: %s",
		  pd_capture_mode_name(d->mode), d->where, d->buffer_kb, d->reason);
	if (d->mode == PD_CAPTURE_GRAPH)
		pd_info("graph functions (detail %s%s, hooked by %s): %s; preemptions: %s",
			pd_detail_name(detail), nr_pids ? ", narrowed to pids" : "", d->hooks,
			d->functions, by ? by : "off");
	ret = pd_ingest_live_begin(d->ingest, d->kernel, pd_capture_clock_offset_ns(d->capture),
				   err, sizeof(err));
	if (ret)
		pd_err("database %s: %s", d->cfg.db_path, err);
	return ret;
}

/*
 * A capture restart (a reload, an investigation's start or end, a setup
 * another tool took apart) runs on the main loop, which feeds the watchdog:
 * setting function_graph up took 25.8 s of a loaded guest against
 * WatchdogSec=30. For its duration the watchdog's timeout is raised to
 * RESTART_BUDGET_S (systemd's WATCHDOG_USEC=) and given back after: a restart
 * that hangs still gets the daemon killed (and tracefs repaired by the unit's
 * ExecStopPost=), only later.
 */
#define RESTART_BUDGET_S 300ull

static void restart_begin(struct daemon *d)
{
	if (d->wd_usec)
		sd_notifyf(0, "WATCHDOG=1\nWATCHDOG_USEC=%llu", RESTART_BUDGET_S * 1000000ull);
}

static void restart_end(struct daemon *d)
{
	if (d->wd_usec)
		sd_notifyf(0, "WATCHDOG_USEC=%llu\nWATCHDOG=1", (unsigned long long)d->wd_usec);
}

/* The configured default: what starts at startup, after an investigation and on reload. */
static int start_capture(struct daemon *d)
{
	return start_capture_at(d, d->cfg.capture, d->cfg.detail, NULL, 0);
}

static int stop_capture(struct daemon *d)
{
	struct pd_capture_stats st;
	struct pt_input_stats is;
	char err[1024];
	int ret, r;

	if (!d->capture)
		return 0;
	pd_capture_get_stats(d->capture, &st);
	ret = pd_capture_stop(d->capture, err, sizeof(err));
	d->capture = NULL;
	if (ret)
		pd_err("stopping capture: %s", err);
	else
		pd_info("capture stopped, tracefs restored: %llu events, %llu lost, %llu forks",
			(unsigned long long)st.events, (unsigned long long)st.lost,
			(unsigned long long)st.forks);
	pt_input_stats_init(&is);
	is.events = st.events;
	is.lost_events = st.lost;
	is.lost_unknown = st.lost_unknown;
	is.first_ts_ns = st.first_ts_ns;
	is.last_ts_ns = st.last_ts_ns;
	is.cpus = st.cpus;
	r = pd_ingest_live_end(d->ingest, &is, err, sizeof(err));
	if (r) {
		pd_err("database %s: %s", d->cfg.db_path, err);
		ret = ret ? ret : r;
	}
	return ret;
}

/* ------------------------------------------------------- investigations */

/* Updates the active one's cost and hands the counters to the metrics. */
static void inv_progress(struct daemon *d)
{
	struct pd_inv_counters ic;
	uint64_t now = mono_ns();

	pthread_mutex_lock(&d->lock);
	pd_inv_progress(&d->inv, d->cst.events, cpu_ns(), now);
	pd_inv_counters(&d->inv, now, &ic);
	pthread_mutex_unlock(&d->lock);
	pd_metrics_set_investigations(d->metrics, &ic);
}

/* The pids to trace: the pid asked for, or the comm's processes (all when none or too many). */
static unsigned inv_resolve(struct pd_inv *v, char *err, size_t errlen)
{
	char path[32];
	bool more = false;

	v->nr_pids = 0;
	if (v->pid >= 0) {
		snprintf(path, sizeof(path), "/proc/%d", v->pid);
		if (access(path, F_OK)) {
			snprintf(err, errlen, "pid: no process %d", v->pid);
			return 400;
		}
		v->pids[0] = v->pid;
		v->nr_pids = 1;
	} else if (v->comm[0]) {
		if (pd_inv_pids_of_comm("/proc", v->comm, v->pids, PD_INV_MAX_PIDS, &v->nr_pids,
					&more) ||
		    more)
			v->nr_pids = 0; /* all pids; forks are still kept by comm */
	}
	return 0;
}

/* Back to the configured default; the active investigation (if any) ends with @why. */
static json_t *inv_end(struct daemon *d, enum pd_inv_end why)
{
	json_t *body = NULL;
	int ret;

	snapshot(d);
	inv_progress(d);
	restart_begin(d);
	stop_capture(d); /* its last forks still count for the investigation */
	pthread_mutex_lock(&d->lock);
	if (d->inv.active) {
		pd_inv_finish(&d->inv, why, mono_ns(), store_now_ns(), cpu_ns());
		body = pd_inv_json(&d->inv.hist[(d->inv.hist_next + PD_INV_HISTORY - 1) %
						 PD_INV_HISTORY],
				   false);
	}
	pthread_mutex_unlock(&d->lock);
	ret = start_capture(d);
	restart_end(d);
	set_capture_health(d, !ret);
	inv_progress(d);
	return body;
}

static unsigned inv_refused(struct daemon *d, enum pd_inv_refusal why, char *err, size_t errlen)
{
	switch (why) {
	case PD_INV_REFUSED_ACTIVE:
		snprintf(err, errlen, "investigation %llu is active (DELETE it first)",
			 (unsigned long long)d->inv.cur.id);
		return 409;
	case PD_INV_REFUSED_COOLDOWN:
		snprintf(err, errlen, "refused: within the cool-down after the last one");
		return 409;
	default:
		snprintf(err, errlen, "refused: over the investigation budget (%.3f of an hour)",
			 d->inv.pol.budget);
		return 409;
	}
}

/* Starts @v (reason, detail, comm, pid set) for @dur_ns: 202 with *body, or a refusal. */
static unsigned inv_start(struct daemon *d, struct pd_inv *v, uint64_t dur_ns, json_t **body,
			  char *err, size_t errlen)
{
	enum pd_inv_refusal why;
	unsigned status;
	bool ok;
	int ret;

	pthread_mutex_lock(&d->lock);
	if (d->mode != PD_CAPTURE_GRAPH || !d->capture) {
		pd_inv_refuse(&d->inv, PD_INV_REFUSED_CAPTURE);
		pthread_mutex_unlock(&d->lock);
		snprintf(err, errlen, "capture is %s, not graph: investigations need graph mode",
			 pd_capture_mode_name(d->mode));
		return 409;
	}
	ok = pd_inv_admit(&d->inv, v->reason, dur_ns, mono_ns(), &why);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		return inv_refused(d, why, err, errlen);
	if ((status = inv_resolve(v, err, errlen)))
		return status;
	snapshot(d);
	restart_begin(d);
	stop_capture(d);
	ret = start_capture_at(d, PD_CAPTURE_GRAPH, v->detail, v->pids, v->nr_pids);
	if (ret || d->mode != PD_CAPTURE_GRAPH) {
		pthread_mutex_lock(&d->lock);
		pd_inv_refuse(&d->inv, PD_INV_REFUSED_ERROR);
		pthread_mutex_unlock(&d->lock);
		pd_err("investigation: %s capture did not start; back to the default",
		       pd_detail_name(v->detail));
		stop_capture(d);
		set_capture_health(d, !start_capture(d));
		restart_end(d);
		snprintf(err, errlen, "the %s capture did not start (see the log); capture is back "
				      "to the default",
			 pd_detail_name(v->detail));
		return 503;
	}
	restart_end(d);
	pthread_mutex_lock(&d->lock);
	pd_inv_begin(&d->inv, v, dur_ns, mono_ns(), store_now_ns(), cpu_ns());
	*body = pd_inv_json(&d->inv.cur, true);
	pthread_mutex_unlock(&d->lock);
	inv_progress(d);
	pd_notice("investigation %llu (%s): %s detail for %llu s, %zu pid(s)%s%s",
		  (unsigned long long)d->inv.cur.id, pd_inv_reason_name(v->reason),
		  pd_detail_name(v->detail),
		  (unsigned long long)((d->inv.cur.until_mono_ns - d->inv.cur.start_mono_ns) /
				       1000000000ull),
		  v->nr_pids, v->comm[0] ? ", comm " : "", v->comm);
	return 202;
}

static unsigned inv_api_start(struct daemon *d, const struct pd_inv_request *r, json_t **body,
			      char *err, size_t errlen)
{
	struct pd_inv v = {.reason = PD_INV_API, .detail = r->detail, .pid = r->pid};
	unsigned dur_s;

	if (r->detail != PD_DETAIL_SECTION && r->detail != PD_DETAIL_PTE) {
		snprintf(err, errlen, "detail: section or pte");
		return 400;
	}
	if (r->duration_s > d->cfg.investigation_max_s) {
		snprintf(err, errlen, "duration_s: at most %u (investigation-max-s)",
			 d->cfg.investigation_max_s);
		return 400;
	}
	snprintf(v.comm, sizeof(v.comm), "%s", r->comm);
	/* no duration given: a minute, or the cap when it is shorter */
	if (r->duration_s)
		dur_s = r->duration_s;
	else
		dur_s = d->cfg.investigation_max_s < 60 ? d->cfg.investigation_max_s : 60;
	return inv_start(d, &v, (uint64_t)dur_s * 1000000000ull, body, err, errlen);
}

/* The loop's side of the request slot. */
static void inv_serve_slot(struct daemon *d)
{
	struct inv_slot *sl = &d->slot;
	struct pd_inv_request req;
	json_t *body = NULL;
	char err[512] = "";
	unsigned status;
	uint64_t n;
	bool end;

	(void)!read(sl->efd, &n, sizeof(n));
	pthread_mutex_lock(&sl->lock);
	if (sl->state != SLOT_ASKED) {
		pthread_mutex_unlock(&sl->lock);
		return;
	}
	sl->state = SLOT_TAKEN;
	end = sl->end;
	req = sl->req;
	pthread_mutex_unlock(&sl->lock);
	if (!end) {
		status = inv_api_start(d, &req, &body, err, sizeof(err));
	} else if (!d->inv.active) {
		status = 404;
		snprintf(err, sizeof(err), "no investigation is active");
	} else {
		body = inv_end(d, PD_INV_END_API);
		status = 200;
		pd_notice("investigation ended over the API; capture back to detail %s",
			  pd_detail_name(d->cfg.detail));
	}
	inv_progress(d); /* the metrics count this answer before the client sees it */
	pthread_mutex_lock(&sl->lock);
	sl->status = status;
	sl->body = body;
	snprintf(sl->err, sizeof(sl->err), "%s", err);
	sl->state = SLOT_ANSWERED;
	pthread_cond_broadcast(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
}

/* Once per tick: an automatic start a slow fork asked for, the active one's cost and expiry. */
static void inv_tick(struct daemon *d)
{
	struct pd_inv v = {.reason = PD_INV_AUTO, .detail = PD_DETAIL_SECTION};
	json_t *body = NULL;
	char err[512];
	bool pending;

	pthread_mutex_lock(&d->lock);
	pending = d->auto_pending;
	v.pid = d->auto_pid;
	d->auto_pending = false;
	pthread_mutex_unlock(&d->lock);
	if (pending && !d->inv.active) {
		if (inv_start(d, &v, d->inv.pol.auto_ns, &body, err, sizeof(err)) != 202)
			pd_debug("automatic investigation of pid %d not started: %s", v.pid, err);
		json_decref(body);
	}
	inv_progress(d);
	if (pd_inv_due(&d->inv, mono_ns())) {
		json_decref(inv_end(d, PD_INV_END_TIME));
		pd_notice("investigation time is up; capture back to detail %s",
			  pd_detail_name(d->cfg.detail));
	}
}

/* The loop has stopped: the waiting HTTP thread (if any) gets a 503. */
static void slot_close(struct daemon *d)
{
	pthread_mutex_lock(&d->slot.lock);
	d->slot.closing = true;
	pthread_cond_broadcast(&d->slot.cond);
	pthread_mutex_unlock(&d->slot.lock);
}

/* SIGHUP: re-read the config file; apply what can change live. */
static void reload(struct daemon *d)
{
	struct pd_config n;
	char err[1024];
	int ret;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(mono_ns() / 1000));
	ret = pd_config_load(&n, d->argc, d->argv, err, sizeof(err));
	if (ret) {
		pd_err("reload refused, keeping the running configuration: %s", err);
		if (ret < 0)
			pd_config_free(&n);
		sd_notify(0, "READY=1");
		return;
	}
	pd_log_set_level(n.log_level);
	pd_ingest_set_policy(d->ingest, n.slow_fork_us * 1000, n.retention_days,
			     n.max_db_mb * 1024 * 1024);
#define NEEDS_RESTART(field, name)                                                                 \
	do {                                                                                       \
		if ((n.field && d->cfg.field && strcmp(n.field, d->cfg.field)) ||                  \
		    (!n.field) != (!d->cfg.field))                                                 \
			pd_warn("reload: %s changed; takes effect at restart", name);              \
	} while (0)
	NEEDS_RESTART(db_path, "db");
	NEEDS_RESTART(listen, "listen");
	NEEDS_RESTART(web_root, "web-root");
	NEEDS_RESTART(token_file, "token-file");
	NEEDS_RESTART(allowed_hosts, "allowed-hosts");
	NEEDS_RESTART(instance, "instance");
	NEEDS_RESTART(state_file, "state-file");
	NEEDS_RESTART(lock_dir, "lock-dir");
	NEEDS_RESTART(tracefs, "tracefs");
	NEEDS_RESTART(kernel_btf, "kernel-btf");
#undef NEEDS_RESTART
	if (n.capture != d->cfg.capture || n.detail != d->cfg.detail ||
	    n.buffer_kb != d->cfg.buffer_kb || n.buffer_total_mb != d->cfg.buffer_total_mb ||
	    n.preemptions != d->cfg.preemptions ||
	    n.pass_probes != d->cfg.pass_probes || n.watermark_pct != d->cfg.watermark_pct) {
		/* the capture is rebuilt: tracefs restored, then set up anew */
		pthread_mutex_lock(&d->lock); /* core_status reads these two */
		d->cfg.capture = n.capture;
		d->cfg.detail = n.detail;
		pthread_mutex_unlock(&d->lock);
		d->cfg.buffer_kb = n.buffer_kb;
		d->cfg.buffer_total_mb = n.buffer_total_mb;
		d->cfg.force = n.force;
		d->cfg.preemptions = n.preemptions;
		d->cfg.pass_probes = n.pass_probes;
		d->cfg.watermark_pct = n.watermark_pct;
		pd_notice("reload: capture %s, detail %s: restarting capture",
			  pd_capture_mode_name(n.capture), pd_detail_name(n.detail));
		restart_begin(d);
		stop_capture(d);
		if (d->inv.active) {
			pthread_mutex_lock(&d->lock);
			pd_inv_finish(&d->inv, PD_INV_END_RELOAD, mono_ns(), store_now_ns(),
				      cpu_ns());
			pthread_mutex_unlock(&d->lock);
			pd_notice("reload: the active investigation ended");
		}
		ret = start_capture(d);
		restart_end(d);
		set_capture_health(d, !ret);
	}
	d->cfg.investigation_max_s = n.investigation_max_s;
	d->cfg.auto_investigate_us = n.auto_investigate_us;
	d->cfg.auto_investigate_s = n.auto_investigate_s;
	d->cfg.investigation_budget = n.investigation_budget;
	d->cfg.investigation_cooldown_s = n.investigation_cooldown_s;
	pthread_mutex_lock(&d->lock);
	pd_inv_policy_from_config(&d->cfg, &d->inv.pol);
	d->cfg.slow_fork_us = n.slow_fork_us; /* core_status reads it */
	pthread_mutex_unlock(&d->lock);
	d->cfg.poll_ms = n.poll_ms; /* the main loop re-arms its timer */
	d->cfg.log_level = n.log_level;
	d->cfg.retention_days = n.retention_days;
	d->cfg.max_db_mb = n.max_db_mb;
	for (size_t i = 0; i < n.nr_replay; i++) {
		bool had = false;

		for (size_t k = 0; k < d->cfg.nr_replay; k++)
			had |= !strcmp(d->cfg.replay[k], n.replay[i]);
		if (!had && !pd_ingest_submit_replay(d->ingest, n.replay[i], NULL, false, NULL, err,
						     sizeof(err)))
			pd_info("reload: queued replay %s", n.replay[i]);
	}
	/* the file's list is the one to compare the next reload with (each file
	 * queued once, not hashed again at every reload) */
	for (size_t k = 0; k < d->cfg.nr_replay; k++)
		free(d->cfg.replay[k]);
	memcpy(d->cfg.replay, n.replay, n.nr_replay * sizeof(n.replay[0]));
	d->cfg.nr_replay = n.nr_replay;
	n.nr_replay = 0;
	pd_config_free(&n);
	pd_info("configuration reloaded");
	sd_notify(0, "READY=1");
}

/* ------------------------------------------------------------------- main */

/* Reads one signal: true when it asks to stop (SIGTERM, SIGINT); SIGHUP reloads. */
static bool on_signal(struct daemon *d, int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGHUP) {
		pd_info("SIGHUP: reloading %s",
			d->cfg.config_path ? d->cfg.config_path : "(no config file)");
		reload(d);
		return false;
	}
	pd_info("%s: stopping", strsignal((int)si.ssi_signo));
	return true;
}

struct tick_times {
	uint64_t wd_usec, last_flush, last_wd, last_ret, last_check;
};

#define SETUP_CHECK_NS (10ull * 1000000000ull)

/*
 * Whether our tracefs setup is still there (pd_capture_check): another tool
 * may have taken it apart (trace-cmd reset, tracing_on written in our
 * instance), and the capture would then record nothing while it looks
 * healthy. The capture is then set up again (an investigation ends with it).
 */
static void check_setup(struct daemon *d)
{
	char why[512];
	int ret;

	if (!d->capture || pd_capture_check(d->capture, why, sizeof(why)) != -ESTALE)
		return;
	pthread_mutex_lock(&d->lock);
	d->setup_lost++;
	snprintf(d->setup_lost_why, sizeof(d->setup_lost_why), "%s", why);
	pthread_mutex_unlock(&d->lock);
	pd_warn("the capture's tracefs setup was changed by another tool (%s): setting it up "
		"again",
		why);
	restart_begin(d);
	stop_capture(d);
	if (d->inv.active) {
		pthread_mutex_lock(&d->lock);
		pd_inv_finish(&d->inv, PD_INV_END_ERROR, mono_ns(), store_now_ns(), cpu_ns());
		pthread_mutex_unlock(&d->lock);
		pd_notice("the active investigation ended with its setup");
	}
	ret = start_capture(d);
	restart_end(d);
	set_capture_health(d, !ret);
}

static void arm_timer(int tfd, unsigned ms)
{
	struct itimerspec its = {0};

	its.it_interval.tv_sec = ms / 1000;
	its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000;
	its.it_value = its.it_interval;
	timerfd_settime(tfd, 0, &its, NULL);
}

/* --exit-after-replay: true once every replay is done (@ret: their result). */
static bool replays_done(struct daemon *d, int *ret)
{
	struct pd_ingest_counts ic;

	pd_ingest_get_counts(d->ingest, &ic);
	if (ic.replays_queued)
		return false;
	pd_info("replays done: %llu stored, %llu skipped, %llu failed",
		(unsigned long long)ic.replays_done, (unsigned long long)ic.replays_skipped,
		(unsigned long long)ic.replays_failed);
	*ret = ic.replays_failed ? -EIO : 0;
	return true;
}

/* A read of the buffers (a CPU's reached the watermark), and on a timer tick
 * (@due) what is due then: status and commit once a second, retention once
 * an hour, the watchdog. True when the loop must end, with the result in @ret. */
static bool tick(struct daemon *d, struct tick_times *tt, bool due, int *ret)
{
	char err[1024];
	uint64_t now;

	if (d->capture && (*ret = pd_capture_poll(d->capture, err, sizeof(err)))) {
		pd_err("capture failed: %s", err);
		set_capture_health(d, false);
		return true;
	}
	if (!due)
		return false;
	inv_tick(d);
	now = mono_ns();
	if (now - tt->last_flush >= 1000000000ull) {
		/* status and counters once a second: the tick stays cheap when idle */
		snapshot(d);
		tt->last_flush = now;
		/* a failure turns ingest unhealthy (logged there); the next flush tries again */
		pd_ingest_flush(d->ingest, err, sizeof(err));
	}
	if (now - tt->last_check >= SETUP_CHECK_NS) {
		tt->last_check = now;
		check_setup(d);
	}
	if (now - tt->last_ret >= 3600ull * 1000000000ull) {
		tt->last_ret = now;
		if (pd_ingest_retention(d->ingest, err, sizeof(err)))
			pd_warn("retention: %s", err);
	}
	if (tt->wd_usec && now - tt->last_wd >= tt->wd_usec * 1000 / 2) {
		tt->last_wd = now;
		sd_notify(0, "WATCHDOG=1");
	}
	return d->cfg.exit_after_replay && replays_done(d, ret);
}

#define MAX_POLL_CPUS 1024

/*
 * The main loop. The buffers are read when one of them fills to the
 * watermark (--buffer-watermark: the kernel wakes a reader polling a CPU's
 * buffer then), and at the latest every --poll-ms with the rest of the tick's
 * work: an idle host wakes the daemon once a tick, a fork's events are
 * handled in one read a tick later (or sooner in a burst), not a read every
 * 100 ms while events come (the old pace: each wake-up cost about as much as
 * the reading, and landed on the work that ran after a fork).
 */
static int run(struct daemon *d, int sfd)
{
	struct tick_times tt = {
	    .last_flush = mono_ns(), .last_ret = mono_ns(), .last_check = mono_ns()};
	struct pollfd *p = calloc(3 + MAX_POLL_CPUS, sizeof(*p));
	int tfd, ret = 0;

	sd_watchdog_enabled(0, &tt.wd_usec);
	d->wd_usec = tt.wd_usec;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0 || !p) {
		ret = tfd < 0 ? -errno : -ENOMEM;
		pd_err("starting the main loop: %s", strerror(-ret));
		if (tfd >= 0)
			close(tfd);
		free(p);
		return ret;
	}
	for (unsigned armed = 0;;) {
		int fds[MAX_POLL_CPUS],
		    n = d->capture && d->cfg.watermark_pct
			    ? pd_capture_fds(d->capture, fds, MAX_POLL_CPUS)
			    : 0;
		bool due, full = false;
		uint64_t ticks;

		if (armed != d->cfg.poll_ms)
			arm_timer(tfd, armed = d->cfg.poll_ms);
		p[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		p[1] = (struct pollfd){.fd = tfd, .events = POLLIN};
		p[2] = (struct pollfd){.fd = d->slot.efd, .events = POLLIN};
		for (int i = 0; i < n; i++)
			p[3 + i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		if (poll(p, (nfds_t)(3 + n), -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			pd_err("poll: %s", strerror(errno));
			break;
		}
		if ((p[0].revents & POLLIN) && on_signal(d, sfd))
			break;
		if (p[2].revents & POLLIN)
			inv_serve_slot(d);
		for (int i = 0; i < n; i++)
			full |= (p[3 + i].revents & (POLLIN | POLLERR)) != 0;
		due = (p[1].revents & POLLIN) != 0;
		if (due)
			(void)!read(tfd, &ticks, sizeof(ticks));
		if (!due && !full)
			continue;
		if (tick(d, &tt, due, &ret))
			break;
	}
	close(tfd);
	free(p);
	return ret;
}

/*
 * Creates the missing directories above @path (mode 0700: the database and
 * the tracefs state are the daemon's own), as a run by hand outside systemd
 * (no StateDirectory=) needs. 0 or -errno naming the directory in @err.
 */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST) {
			int ret = -errno;

			snprintf(err, errlen, "cannot create the directory %s: %s", dir,
				 strerror(errno));
			return ret;
		}
		*p = '/';
	}
	return 0;
}

/* Locks, the investigation state and its hand-over slot, start times. 0 or -errno. */
/*
 * The daemon never preempts the work it watches: a waking SCHED_BATCH task
 * does not preempt the running one (a fork in the middle of its copy), it
 * waits for the next tick or for that task to block, and still gets its fair
 * share of the CPU. Its threads inherit the policy.
 */
static void sched_batch(void)
{
	struct sched_param sp = {.sched_priority = 0};

	if (sched_setscheduler(0, SCHED_BATCH, &sp))
		pd_warn("cannot run as SCHED_BATCH (%s): the daemon's wakeups may preempt forks",
			strerror(errno));
}

static int daemon_init(struct daemon *d)
{
	struct pd_inv_policy pol;
	struct utsname u;

	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->slot.serial, NULL);
	pthread_mutex_init(&d->slot.lock, NULL);
	pthread_cond_init(&d->slot.cond, NULL);
	d->detail = d->cfg.detail;
	pd_inv_policy_from_config(&d->cfg, &pol);
	pd_inv_init(&d->inv, &pol);
	d->slot.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->slot.efd < 0) {
		pd_err("eventfd: %s", strerror(errno));
		return -errno;
	}
	d->start_mono_ns = mono_ns();
	d->start_wall_ns = store_now_ns();
	d->nr_cpus_conf = sysconf(_SC_NPROCESSORS_CONF);
	if (!uname(&u))
		snprintf(d->kernel, sizeof(d->kernel), "%s", u.release);
	return 0;
}

/* Signals are read from a signalfd; they are blocked before any thread exists. */
static int signals_fd(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		pd_err("signalfd: %s", strerror(errno));
	return sfd;
}

/* The state directories, the metrics (with their comm allow-list) and the store. */
static int open_sinks(struct daemon *d, char ***comms, size_t *nr_comms)
{
	struct pd_metrics_opts mo = {0};
	struct pd_ingest_opts io = {.db_path = d->cfg.db_path,
				    .sync_full = d->cfg.db_sync_full,
				    .retention_days = d->cfg.retention_days,
				    .max_db_bytes = d->cfg.max_db_mb * 1024 * 1024,
				    .slow_fork_ns = d->cfg.slow_fork_us * 1000,
				    .no_parent_mem = !d->cfg.parent_mem,
				    .no_fork_cgroup = !d->cfg.fork_cgroup};
	struct pd_spool_limits lim = {.max_bytes = d->cfg.spool_max_mb << 20,
				      .max_files = d->cfg.spool_max_files};
	char err[PATH_MAX + 256], spool[4096]; /* err: a whole path fits in the message */
	int ret;

	if ((ret = make_parent_dirs(d->cfg.db_path, err, sizeof(err))) ||
	    (ret = make_parent_dirs(d->cfg.state_file, err, sizeof(err)))) {
		pd_err("%s", err);
		return ret;
	}
	/* the pass probes' plans are kept beside the tracefs state (ours alone) */
	snprintf(d->cache_dir, sizeof(d->cache_dir), "%s", d->cfg.state_file);
	*(strrchr(d->cache_dir, '/') ? strrchr(d->cache_dir, '/') : d->cache_dir) = 0;
	if (!d->cache_dir[0])
		snprintf(d->cache_dir, sizeof(d->cache_dir), "/");
	if (split_comms(d->cfg.comm_allow, comms, nr_comms)) {
		pd_err("out of memory");
		return -ENOMEM;
	}
	mo.comm_allow = (const char *const *)*comms;
	mo.nr_comm_allow = *nr_comms;
	mo.cgroup_label = (enum pd_metrics_cgroup_label)d->cfg.metrics_cgroup_label;
	mo.cgroup_max = d->cfg.metrics_cgroup_max;
	if ((ret = pd_metrics_new(&mo, &d->metrics))) {
		pd_err("%s", ret == -EINVAL ? "--comm-allow would make duplicate metric series"
					    : "out of memory");
		return ret;
	}
	if (snprintf(spool, sizeof(spool), "%s-uploads", d->cfg.db_path) >= (int)sizeof(spool)) {
		pd_err("database path too long: %s", d->cfg.db_path);
		return -ENAMETOOLONG;
	}
	if ((ret = pd_spool_open(spool, &lim, &d->spool, err, sizeof(err)))) {
		pd_err("%s", err);
		return ret;
	}
	io.metrics = d->metrics;
	io.spool = d->spool;
	if ((ret = pd_ingest_open(&io, &d->ingest, err, sizeof(err)))) {
		pd_err("database %s: %s", d->cfg.db_path, err);
		return ret;
	}
	if (pd_ingest_retention(d->ingest, err, sizeof(err)))
		pd_warn("retention: %s", err);
	return 0;
}

static int start_http(struct daemon *d)
{
	struct pd_http_config hc = {.listen = d->cfg.listen,
				    .db_path = d->cfg.db_path,
				    .web_root = d->cfg.web_root,
				    .token_file = d->cfg.token_file,
				    .allowed_hosts = d->cfg.allowed_hosts,
				    .spool = d->spool,
				    .max_upload_bytes = d->cfg.max_upload_mb << 20,
				    /* connection limits: the HTTP layer's defaults */
				    .timeout_s = 30,
				    .threads = 2};
	struct pd_core core = {.ctx = d,
			       .status = core_status,
			       .submit_replay = core_submit_replay,
			       .healthy = core_healthy,
			       .investigate = core_investigate,
			       .end_investigation = core_end_investigation,
			       .investigations = core_investigations};
	char err[1024];
	int ret = pd_http_start(&hc, &core, d->metrics, &d->http, err, sizeof(err));

	if (ret)
		pd_err("HTTP listener %s: %s", d->cfg.listen, err);
	return ret;
}

static int queue_replays(struct daemon *d)
{
	char err[1024];

	for (size_t i = 0; i < d->cfg.nr_replay; i++) {
		int ret = pd_ingest_submit_replay(d->ingest, d->cfg.replay[i], NULL, false, NULL,
						  err, sizeof(err));

		if (ret) {
			pd_err("replay %s: %s", d->cfg.replay[i], err);
			return ret;
		}
	}
	return 0;
}

static void announce_ready(struct daemon *d)
{
	const char *colon = strrchr(d->cfg.listen, ':');
	int port = d->http ? pd_http_port(d->http) : -1;
	char where[300];

	/* the bound port: with port 0 the kernel picked one */
	if (colon && port > 0)
		snprintf(where, sizeof(where), "%.*s:%d", (int)(colon - d->cfg.listen), d->cfg.listen,
			 port);
	else
		snprintf(where, sizeof(where), "%s", d->cfg.listen);
	pthread_mutex_lock(&d->lock);
	d->ready = true;
	pthread_mutex_unlock(&d->lock);
	sd_notifyf(0, "READY=1\nSTATUS=capture %s, listening on %s", pd_capture_mode_name(d->mode),
		   where);
	pd_info("ready: capture %s, database %s, listening on %s", pd_capture_mode_name(d->mode),
		d->cfg.db_path, where);
}

/* Stops everything in order (tracefs restored); false when something failed. */
static bool daemon_shutdown(struct daemon *d)
{
	char err[1024];
	bool ok = true;

	sd_notify(0, "STOPPING=1");
	slot_close(d);
	pd_http_stop(d->http);
	if (stop_capture(d))
		ok = false;
	if (d->inv.active) {
		/* not persisted: the next start runs the configured default */
		pthread_mutex_lock(&d->lock);
		pd_inv_finish(&d->inv, PD_INV_END_STOP, mono_ns(), store_now_ns(), cpu_ns());
		pthread_mutex_unlock(&d->lock);
		pd_info("the active investigation ended with the daemon");
	}
	if (d->ingest && pd_ingest_close(d->ingest, err, sizeof(err))) {
		pd_err("%s", err);
		ok = false;
	}
	pd_spool_free(d->spool);
	pd_metrics_free(d->metrics);
	free(d->cpus);
	if (d->slot.efd > 0)
		close(d->slot.efd);
	json_decref(d->slot.body);
	pthread_cond_destroy(&d->slot.cond);
	pthread_mutex_destroy(&d->slot.lock);
	pthread_mutex_destroy(&d->slot.serial);
	pthread_mutex_destroy(&d->lock);
	return ok;
}

/*
 * The configuration; for --repair, with the command line alone when the
 * config file cannot be read (a broken file may be why the daemon died).
 * 0, 1 (--help, --version: exit 0) or -errno with the error printed.
 */
static int load_config(struct pd_config *cfg, int argc, char **argv)
{
	char err[1024], *rest[64];
	int n = 0, ret = pd_config_load(cfg, argc, argv, err, sizeof(err));
	bool repair = false;

	for (int i = 1; i < argc; i++)
		repair |= !strcmp(argv[i], "--repair");
	if (ret >= 0 || !repair || argc > 64) {
		if (ret < 0)
			fprintf(stderr, "ptescoped: error: %s\n", err);
		return ret;
	}
	fprintf(stderr, "ptescoped: warning: %s; repairing with the command line's options alone\n",
		err);
	pd_config_free(cfg);
	for (int i = 0; i < argc; i++) {
		if (i && !strcmp(argv[i], "--config")) {
			i++;
			continue;
		}
		if (!i || strncmp(argv[i], "--config=", 9))
			rest[n++] = argv[i];
	}
	ret = pd_config_load(cfg, n, rest, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "ptescoped: error: %s\n", err);
	return ret;
}

int main(int argc, char **argv)
{
	struct daemon d = {.argc = argc, .argv = argv};
	char **comms = NULL;
	size_t nr_comms = 0;
	int sfd = -1, ret, status = 1;

	ret = load_config(&d.cfg, argc, argv);
	if (ret) {
		if (ret < 0)
			pd_config_free(&d.cfg);
		return ret > 0 ? 0 : 2;
	}
	pd_log_set_level(d.cfg.log_level);
	/* before anything can fail: what a dead run left hooked is undone */
	ret = pd_repair_tracefs(&d.cfg, &d.inst_lock);
	if (d.cfg.repair || ret) {
		pd_tfs_lock_release(d.inst_lock);
		pd_config_free(&d.cfg);
		return ret ? 1 : 0;
	}
	sched_batch();
	if (daemon_init(&d) || (sfd = signals_fd()) < 0 || open_sinks(&d, &comms, &nr_comms))
		goto out;
	if (start_capture(&d))
		goto out;
	set_capture_health(&d, true);
	if (start_http(&d) || queue_replays(&d) || resume_spool(&d))
		goto out;
	announce_ready(&d);
	status = run(&d, sfd) ? 1 : 0;
out:
	if (!daemon_shutdown(&d))
		status = 1;
	pd_tfs_lock_release(d.inst_lock);
	free_comms(comms, nr_comms);
	if (sfd >= 0)
		close(sfd);
	pd_config_free(&d.cfg);
	return status;
}
