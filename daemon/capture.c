/* SPDX-License-Identifier: MIT */
/*
 * A live capture's life (the capture.h contract): started (tracefs repaired
 * of a dead run's leftovers, a mode chosen and set up by capture_setup.c,
 * reading begun by capture_read.c), checked for another tool's changes,
 * stopped with tracefs restored or aborted, and what it reports to the
 * daemon. Runs in the daemon's main thread.
 */
#include "capture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tracefs/tracefs.h>

#include "capture_internal.h"

static void free_capture(struct pd_capture *c)
{
	pd_cap_close_cpus(c);
	pd_merge_free(c->merge);
	pd_ksyms_free(c->ksyms);
	free(c->drained);
	free(c->cpus);
	free(c->page);
	pt_raw_decoder_free(c->dec);
	if (c->tep)
		tep_free(c->tep);
	recon_free(c->recon);
	pd_sysfork_free(c->sysfork);
	pd_tfs_free(c->tfs);
	free(c);
}

void pd_capture_abort(struct pd_capture *c)
{
	char err[512];

	if (!c || c->restored)
		return;
	c->restored = true;
	pd_cap_close_cpus(c);
	if (!pd_tfs_dirty(c->tfs))
		return;
	pd_tfs_write(c->tfs, "tracing_on", "0", err, sizeof(err));
	pd_tfs_restore(c->tfs, err, sizeof(err));
}

/* --log-level debug shows every tracefs write, in order, with what it took
 * (a write that makes ftrace update the kernel's code takes far longer). */
static void log_write(void *ctx, const char *rel, const char *value, bool append, int result,
		      uint64_t ns)
{
	(void)ctx;
	pd_debug("tracefs: %s %s '%.*s'%s%s (%.1f ms)", append ? "append" : "write", rel,
		 (int)strcspn(value, "\n"), value, result ? ": " : "",
		 result ? strerror(-result) : "", (double)ns / 1e6);
}

int pd_capture_start(const struct pd_capture_opts *o, struct pd_capture **out, char *err,
		     size_t errlen)
{
	struct pd_capture *c = calloc(1, sizeof(*c));
	uint64_t t0 = pt_mono_ns();
	const char *dir;
	char msg[512];
	int ret;

	err[0] = 0;
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->st.first_ts_ns = c->st.last_ts_ns = PT_NO_TIME;
	dir = o->tracefs ? o->tracefs : tracefs_tracing_dir();
	if (!dir || access(dir, F_OK)) {
		snprintf(err, errlen,
			 "no tracefs mounted%s%s (mount -t tracefs nodev "
				      "/sys/kernel/tracing)",
			 o->tracefs ? " at " : "", o->tracefs ? o->tracefs : "");
		free(c);
		return -ENOTSUP;
	}
	if ((ret = pd_tfs_kprobe_group(o->instance, c->group, sizeof(c->group))) ||
	    (ret = pd_tfs_new(dir, o->state_file, &c->tfs))) {
		snprintf(err, errlen, "cannot use tracefs at %s: %s", dir, strerror(-ret));
		free(c);
		return ret;
	}
	pd_tfs_set_lock_dir(c->tfs, o->lock_dir);
	pd_tfs_set_observer(c->tfs, log_write, NULL);
	ret = pd_tfs_repair(c->tfs, o->instance, msg, sizeof(msg));
	if (ret < 0) {
		snprintf(err, errlen, "%s", msg);
		goto fail;
	}
	if (msg[0])
		snprintf(c->reason, sizeof(c->reason), "%s; ", msg); /* main logs it */
	if ((ret = pd_cap_choose_mode(c, err, errlen)) || (ret = pd_cap_begin_reading(c, err, errlen)))
		goto fail;
	took("starting the capture", t0);
	*out = c;
	return 0;
fail:
	pd_capture_abort(c);
	free_capture(c);
	return ret < 0 ? ret : -EINVAL;
}

int pd_capture_stop(struct pd_capture *c, char *err, size_t errlen)
{
	char msg[512];
	int ret = 0, r;

	if (!c)
		return 0;
	if (!c->restored) {
		pd_tfs_write(c->tfs, "tracing_on", "0", msg, sizeof(msg));
		ret = pd_cap_read_all(c, true, err, errlen);
		pd_cap_account_stats(c, true);
	}
	r = c->recon ? recon_finish(c->recon) : c->sysfork ? pd_sysfork_finish(c->sysfork) : 0;
	if (r && !ret) {
		ret = r;
		snprintf(err, errlen, "handing over the last forks: %s", strerror(-r));
	}
	if (!c->restored) {
		uint64_t t0 = pt_mono_ns();

		pd_cap_close_cpus(c);
		r = pd_tfs_restore(c->tfs, msg, sizeof(msg));
		took("restoring tracefs", t0);
		if (r && !ret) {
			ret = r;
			snprintf(err, errlen, "%s", msg);
		}
		c->restored = true;
	}
	free_capture(c);
	return ret;
}

int pd_capture_check(struct pd_capture *c, char *why, size_t len)
{
	char buf[64], rel[128];

	if (c->restored)
		return 0;
	if (pd_tfs_read(c->tfs, "tracing_on", buf, sizeof(buf)) <= 0 || buf[0] != '1') {
		snprintf(why, len, "%s/tracing_on is %s", c->where,
			 pd_tfs_exists(c->tfs, "tracing_on") ? "not 1" : "gone (the instance too)");
		return -ESTALE;
	}
	if (c->kprobes)
		snprintf(rel, sizeof(rel), "events/%s/enable", c->group);
	else if (c->mode == PD_CAPTURE_GRAPH)
		snprintf(rel, sizeof(rel), "current_tracer");
	else
		snprintf(rel, sizeof(rel), "events/sched/sched_process_fork/enable");
	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0 ||
	    (c->kprobes || c->mode != PD_CAPTURE_GRAPH
		 ? buf[0] != '1'
		 : strncmp(buf, "function_graph", 14))) {
		snprintf(why, len, "%s/%s is %s", c->where, rel,
			 pd_tfs_exists(c->tfs, rel) ? "not ours any more" : "gone");
		return -ESTALE;
	}
	return 0;
}

int pd_capture_fds(const struct pd_capture *c, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < c->nr_cpus && n < max; i++)
		if (c->cpus[i].fd >= 0)
			fds[n++] = c->cpus[i].fd;
	return n;
}

enum pd_capture_mode pd_capture_mode(const struct pd_capture *c)
{
	return c->mode;
}

const char *pd_capture_reason(const struct pd_capture *c)
{
	return c->reason;
}

const char *pd_capture_hooks(const struct pd_capture *c)
{
	return c->mode != PD_CAPTURE_GRAPH ? "" : c->kprobes ? "kprobes" : "function_graph";
}

const char *pd_capture_where(const struct pd_capture *c)
{
	return c->where;
}

const char *pd_capture_functions(const struct pd_capture *c)
{
	return c->functions;
}

void pd_capture_passes(const struct pd_capture *c, struct pd_passes_info *out)
{
	*out = (struct pd_passes_info){.state = c->passes, .why = c->passes_why};
	if (c->passes != PD_PASSES_ARMED)
		return;
	out->plan = &c->cs.plan;
	out->build_id = c->cs.build_id;
	out->cached = c->cs.cached;
	out->read_ms = c->cs.read_ms;
	out->child_check = !c->site_child ? "off" : c->child_slack ? "approximate" : "exact";
	out->before_calls = (c->cs.plan.start_off != c->cs.plan.call_start_off) +
			    (c->cs.plan.end_off != c->cs.plan.call_end_off);
}

const char *pd_capture_pass_mismatch(const struct pd_capture *c)
{
	return c->recon ? recon_pass_mismatch(c->recon) : NULL;
}

const char *pd_capture_preemptions(const struct pd_capture *c)
{
	return c->task_ctr ? "task_counters" : c->sched_switch ? "sched_switch" : NULL;
}

unsigned pd_capture_buffer_kb(const struct pd_capture *c, bool *capped)
{
	if (capped)
		*capped = c->buffer_capped;
	return c->buffer_kb;
}

int64_t pd_capture_clock_offset_ns(const struct pd_capture *c)
{
	return c->clock_offset_ns;
}

void pd_capture_get_stats(const struct pd_capture *c, struct pd_capture_stats *st)
{
	*st = c->st;
}

int pd_capture_cpu_stats(const struct pd_capture *c, struct pd_cpu_stat *out, int max)
{
	for (int i = 0; i < c->nr_cpus && i < max; i++) {
		const struct cpu_buf *b = &c->cpus[i];

		out[i] = (struct pd_cpu_stat){.cpu = b->cpu,
					      .overrun = b->overrun - b->base_overrun,
					      .dropped = b->dropped - b->base_dropped,
					      .entries = b->entries};
	}
	return c->nr_cpus;
}
