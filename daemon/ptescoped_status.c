/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/status and /healthz as the daemon answers them (the pd_core
 * status and healthy callbacks, api.h): the capture's description and
 * counters, the investigations, ingest's counts and the database, built on
 * an HTTP thread from the snapshot the main thread keeps under d->lock
 * (ptescoped_internal.h). Called once per status request.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ptescoped_internal.h"

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

void core_status(void *ctx, json_t *st)
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
	json_object_set_new(st, "investigation", pd_inv_status_json(&d->inv, pt_mono_ns()));
	pass_mismatch = d->pass_mismatch;
	pthread_mutex_unlock(&d->lock);
	json_object_set_new(st, "version", json_string(PTESCOPE_VERSION));
	json_object_set_new(st, "kernel", json_string(d->kernel));
	json_object_set_new(st, "uptime_s",
			    json_real((double)(pt_mono_ns() - d->start_mono_ns) / 1e9));
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

bool core_healthy(void *ctx)
{
	struct daemon *d = ctx;
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = d->ready && d->capture_ok;
	pthread_mutex_unlock(&d->lock);
	return ok && pd_ingest_healthy(d->ingest);
}
