/* SPDX-License-Identifier: MIT */
/*
 * The live capture as the daemon runs it (capture.h does the tracefs work):
 * started in the configured mode or an investigation's, stopped, restarted
 * when another tool took its setup apart, under a raised watchdog timeout;
 * its description and counters copied into the status snapshot under
 * d->lock; every live fork passes here before ingest (live_fork, called
 * from inside pd_capture_poll). Main thread only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "ptescoped_internal.h"

void snapshot(struct daemon *d)
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

void set_capture_health(struct daemon *d, bool ok)
{
	pthread_mutex_lock(&d->lock);
	d->capture_ok = ok;
	pthread_mutex_unlock(&d->lock);
	if (d->metrics)
		pd_metrics_set_capture(d->metrics, pd_capture_mode_name(d->mode), ok);
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
int start_capture_at(struct daemon *d, enum pd_capture_mode mode, enum pd_detail detail,
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

void restart_begin(struct daemon *d)
{
	if (d->wd_usec)
		sd_notifyf(0, "WATCHDOG=1\nWATCHDOG_USEC=%llu", RESTART_BUDGET_S * 1000000ull);
}

void restart_end(struct daemon *d)
{
	if (d->wd_usec)
		sd_notifyf(0, "WATCHDOG_USEC=%llu\nWATCHDOG=1", (unsigned long long)d->wd_usec);
}

/* The configured default: what starts at startup, after an investigation and on reload. */
int start_capture(struct daemon *d)
{
	return start_capture_at(d, d->cfg.capture, d->cfg.detail, NULL, 0);
}

int stop_capture(struct daemon *d)
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

/*
 * Whether our tracefs setup is still there (pd_capture_check): another tool
 * may have taken it apart (trace-cmd reset, tracing_on written in our
 * instance), and the capture would then record nothing while it looks
 * healthy. The capture is then set up again (an investigation ends with it).
 */
void check_setup(struct daemon *d)
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
		pd_inv_finish(&d->inv, PD_INV_END_ERROR, pt_mono_ns(), store_now_ns(), cpu_ns());
		pthread_mutex_unlock(&d->lock);
		pd_notice("the active investigation ended with its setup");
	}
	ret = start_capture(d);
	restart_end(d);
	set_capture_health(d, !ret);
}
