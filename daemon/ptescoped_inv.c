/* SPDX-License-Identifier: MIT */
/*
 * Investigations as the daemon runs them (investigate.h keeps the
 * bookkeeping): one at a time, asked for by an HTTP thread through the
 * request slot and its eventfd (the thread waits for the answer; only the
 * main loop stops or starts the capture), or by the loop after a slow fork;
 * started and ended by restarting the capture with the other detail; ended
 * on the tick when their time is up. Nothing of them is persisted.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "ptescoped_internal.h"

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

unsigned core_investigate(void *ctx, const struct pd_inv_request *req, json_t **body, char *err,
			  size_t errlen)
{
	return slot_ask(ctx, false, req, body, err, errlen);
}

unsigned core_end_investigation(void *ctx, json_t **body, char *err, size_t errlen)
{
	return slot_ask(ctx, true, NULL, body, err, errlen);
}

json_t *core_investigations(void *ctx)
{
	struct daemon *d = ctx;
	json_t *o;

	pthread_mutex_lock(&d->lock);
	o = pd_inv_list_json(&d->inv, pt_mono_ns());
	pthread_mutex_unlock(&d->lock);
	return o;
}

/* Updates the active one's cost and hands the counters to the metrics. */
static void inv_progress(struct daemon *d)
{
	struct pd_inv_counters ic;
	uint64_t now = pt_mono_ns();

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
		pd_inv_finish(&d->inv, why, pt_mono_ns(), store_now_ns(), cpu_ns());
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
	ok = pd_inv_admit(&d->inv, v->reason, dur_ns, pt_mono_ns(), &why);
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
	pd_inv_begin(&d->inv, v, dur_ns, pt_mono_ns(), store_now_ns(), cpu_ns());
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
void inv_serve_slot(struct daemon *d)
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
void inv_tick(struct daemon *d)
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
	if (pd_inv_due(&d->inv, pt_mono_ns())) {
		json_decref(inv_end(d, PD_INV_END_TIME));
		pd_notice("investigation time is up; capture back to detail %s",
			  pd_detail_name(d->cfg.detail));
	}
}

/* The loop has stopped: the waiting HTTP thread (if any) gets a 503. */
void slot_close(struct daemon *d)
{
	pthread_mutex_lock(&d->slot.lock);
	d->slot.closing = true;
	pthread_cond_broadcast(&d->slot.cond);
	pthread_mutex_unlock(&d->slot.lock);
}
