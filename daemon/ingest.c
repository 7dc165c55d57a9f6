/* SPDX-License-Identifier: MIT */
/*
 * The store writer shared by live capture (main thread) and replays (one
 * worker thread), see ingest.h. Lock order: `qlock` (the job queue and the
 * counters) is never held while taking `slock` (the store writer), and the
 * reverse only for counter updates, which take no other lock.
 */
#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procmem.h"
#include "replay.h"
#include "spool.h"
#include "store_sink.h"

#define MAX_JOBS 64

struct job {
	int64_t id;
	char *path, *name;
	bool delete_after;
};

struct pd_ingest {
	struct store *store;
	struct store_sink *sink; /* replays into the store, under slock */
	struct pd_metrics *metrics;
	struct pd_procmem *procmem; /* the parent's memory of live forks (main thread only) */
	pthread_mutex_t slock; /* the store writer */
	int64_t live_source;
	atomic_uint_fast64_t slow_fork_ns;
	int retention_days;
	int64_t max_db_bytes;

	pthread_mutex_t qlock; /* below */
	pthread_cond_t qcond;
	struct job jobs[MAX_JOBS];
	size_t head, len;
	bool running_job, stop, worker_started;
	int64_t next_job;
	struct pd_ingest_counts counts;
	atomic_bool cancel; /* abandon the replay in progress */
	pthread_t worker;
};

int pd_ingest_live_fork(const struct pt_fork *f, void *ctx)
{
	struct pd_ingest *in = ctx;
	uint64_t slow = atomic_load(&in->slow_fork_ns), d = pt_fork_total_ns(f);
	struct pt_fork lean = *f;
	struct timespec now;
	char err[512];
	bool dropped = false, unknown;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pd_procmem_fill(in->procmem, &lean,
			(uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
	f = &lean;
	if (slow && (f->nr_vma || f->nr_pass) && d != PT_NO_TIME && d < slow) {
		lean.vma = NULL;
		lean.nr_vma = 0;
		lean.pass = NULL;
		lean.nr_pass = 0;
		dropped = true;
	}
	pthread_mutex_lock(&in->slock);
	ret = in->live_source ? store_insert_fork(in->store, in->live_source, f, NULL, err,
						  sizeof(err))
			      : -EINVAL;
	pthread_mutex_unlock(&in->slock);
	if (ret) {
		pd_err("storing a live fork: %s", in->live_source ? err : "no live source");
		return ret;
	}
	if (in->metrics)
		pd_metrics_observe_fork(in->metrics, f);
	pthread_mutex_lock(&in->qlock);
	in->counts.live_forks++;
	in->counts.live_detail_dropped += dropped;
	pd_procmem_counts(in->procmem, &in->counts.parent_mem_reads,
			  &in->counts.parent_mem_skipped);
	unknown = (f->flags & PT_FORK_UNKNOWN_LOOP) && !in->counts.live_unknown_loop++;
	pthread_mutex_unlock(&in->qlock);
	if (unknown)
		pd_warn("fork of pid %d: PTEs copied outside every pass the rules know: this "
			"kernel's copy loop is not recognised, its forks are flagged unknown_loop "
			"with null passes and lock breaks (docs/kernels.md)",
			f->parent_pid);
	return 0;
}

static void slock_take(void *ctx)
{
	pthread_mutex_lock(&((struct pd_ingest *)ctx)->slock);
}

static void slock_give(void *ctx)
{
	pthread_mutex_unlock(&((struct pd_ingest *)ctx)->slock);
}

/* Each replayed fork, once stored: shutdown stops the replay, metrics see it. */
static int replay_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct pd_ingest *in = ctx;

	if (atomic_load(&in->cancel)) {
		snprintf(err, errlen, "abandoned at shutdown");
		return -ECANCELED;
	}
	if (in->metrics)
		pd_metrics_observe_fork(in->metrics, f);
	return 0;
}

/* One replay (analyzer/replay.h into the store's sink): 0 stored, 1 skipped
 * (stored before), negative errno. */
static int replay_one(struct pd_ingest *in, const struct job *j, char *err, size_t errlen)
{
	struct pt_replay_opts o = {.name = j->name,
				   .sink = store_sink_replay(in->sink),
				   .on_fork = replay_fork,
				   .ctx = in};
	struct pt_replay_result res;
	int ret = pt_replay_file(j->path, &o, &res, err, errlen);

	if (ret)
		return ret;
	if (res.skipped)
		return 1;
	if (in->metrics)
		pd_metrics_add_events(in->metrics, "replay", res.stats.events, res.stats.lost_events);
	pthread_mutex_lock(&in->qlock);
	in->counts.replay_forks += res.forks;
	pthread_mutex_unlock(&in->qlock);
	pd_info("replayed %s: %llu forks, %llu events, %llu lost", j->name,
		(unsigned long long)res.forks, (unsigned long long)res.stats.events,
		(unsigned long long)res.stats.lost_events);
	return 0;
}

static void *worker_main(void *arg)
{
	struct pd_ingest *in = arg;

	for (;;) {
		struct job j;
		char err[512] = "";
		int ret;

		pthread_mutex_lock(&in->qlock);
		while (!in->stop && !in->len)
			pthread_cond_wait(&in->qcond, &in->qlock);
		if (in->stop) {
			pthread_mutex_unlock(&in->qlock);
			return NULL;
		}
		j = in->jobs[in->head];
		in->running_job = true;
		pthread_mutex_unlock(&in->qlock);

		ret = replay_one(in, &j, err, sizeof(err));
		if (ret < 0)
			pd_err("replay %s: %s", j.name, err);
		else if (ret > 0)
			pd_info("replay %s: already stored, skipped", j.name);
		if (j.delete_after && ret < 0 && atomic_load(&in->cancel))
			pd_info(
			    "upload %s: replay interrupted, kept in the spool for the next start",
			    j.name);
		else if (j.delete_after)
			pd_spool_remove(j.path);

		pthread_mutex_lock(&in->qlock);
		in->head = (in->head + 1) % MAX_JOBS;
		in->len--;
		in->running_job = false;
		if (ret < 0)
			in->counts.replays_failed++;
		else if (ret > 0)
			in->counts.replays_skipped++;
		else
			in->counts.replays_done++;
		pthread_mutex_unlock(&in->qlock);
		free(j.path);
		free(j.name);
	}
}

int pd_ingest_open(const struct pd_ingest_opts *o, struct pd_ingest **out, char *err,
		   size_t errlen)
{
	struct store_opts so = {.sync_full = o->sync_full};
	struct store_sink_opts sink_opts = {.lock = slock_take, .unlock = slock_give};
	struct pd_ingest *in = calloc(1, sizeof(*in));
	int ret;

	if (!in)
		return -ENOMEM;
	pthread_mutex_init(&in->slock, NULL);
	pthread_mutex_init(&in->qlock, NULL);
	pthread_cond_init(&in->qcond, NULL);
	atomic_init(&in->slow_fork_ns, o->slow_fork_ns);
	atomic_init(&in->cancel, false);
	in->metrics = o->metrics;
	in->retention_days = o->retention_days;
	in->max_db_bytes = o->max_db_bytes;
	in->next_job = 1;
	ret = store_open(o->db_path, &so, &in->store, err, errlen);
	if (ret)
		goto fail;
	if (!o->no_parent_mem && pd_procmem_new(NULL, &in->procmem)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sink_opts.lock_ctx = in;
	ret = store_sink_new(in->store, &sink_opts, &in->sink);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = -pthread_create(&in->worker, NULL, worker_main, in);
	if (ret) {
		snprintf(err, errlen, "cannot start the replay thread: %s", strerror(-ret));
		goto fail;
	}
	in->worker_started = true;
	*out = in;
	return 0;
fail:
	pd_procmem_free(in->procmem);
	store_sink_free(in->sink);
	store_close(in->store);
	pthread_mutex_destroy(&in->slock);
	pthread_mutex_destroy(&in->qlock);
	pthread_cond_destroy(&in->qcond);
	free(in);
	return ret;
}

int pd_ingest_close(struct pd_ingest *in, char *err, size_t errlen)
{
	int ret;

	if (!in)
		return 0;
	if (in->worker_started) {
		pthread_mutex_lock(&in->qlock);
		in->stop = true;
		atomic_store(&in->cancel, true);
		pthread_cond_broadcast(&in->qcond);
		pthread_mutex_unlock(&in->qlock);
		pthread_join(in->worker, NULL);
	}
	for (; in->len; in->len--, in->head = (in->head + 1) % MAX_JOBS) {
		struct job *j = &in->jobs[in->head];

		if (j->delete_after)
			pd_info("upload %s: not replayed yet, kept in the spool for the next start",
				j->name);
		free(j->path);
		free(j->name);
	}
	pd_procmem_free(in->procmem);
	store_sink_free(in->sink);
	ret = store_close(in->store);
	if (ret)
		snprintf(err, errlen, "closing the database: %s", strerror(-ret));
	pthread_mutex_destroy(&in->slock);
	pthread_mutex_destroy(&in->qlock);
	pthread_cond_destroy(&in->qcond);
	free(in);
	return ret;
}

int pd_ingest_live_begin(struct pd_ingest *in, const char *kernel, int64_t clock_offset_ns,
			 char *err, size_t errlen)
{
	char host[256] = "";
	bool done = false;
	int ret;

	gethostname(host, sizeof(host) - 1);
	struct store_source_info si = {.kind = STORE_SOURCE_LIVE,
				       .host = host[0] ? host : NULL,
				       .format = "live",
				       .kernel = kernel,
				       .size_bytes = -1,
				       .clock_offset_ns = clock_offset_ns};

	pthread_mutex_lock(&in->slock);
	ret = store_source_begin(in->store, &si, &in->live_source, &done, err, errlen);
	pthread_mutex_unlock(&in->slock);
	pthread_mutex_lock(&in->qlock);
	in->counts.live_source_id = ret ? 0 : in->live_source;
	pthread_mutex_unlock(&in->qlock);
	return ret;
}

int pd_ingest_live_end(struct pd_ingest *in, const struct pt_input_stats *st, char *err,
		       size_t errlen)
{
	int ret;

	if (!in->live_source)
		return 0;
	pthread_mutex_lock(&in->slock);
	ret = store_source_end(in->store, in->live_source, st, err, errlen);
	in->live_source = 0;
	pthread_mutex_unlock(&in->slock);
	return ret;
}

int pd_ingest_submit_replay(struct pd_ingest *in, const char *path, const char *display_name,
			    bool delete_after, int64_t *job_id, char *err, size_t errlen)
{
	struct job j = {.delete_after = delete_after};
	int ret = 0;

	j.path = strdup(path);
	j.name = strdup(display_name ? display_name : path);
	if (!j.path || !j.name) {
		free(j.path);
		free(j.name);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&in->qlock);
	if (in->stop) {
		ret = -ESHUTDOWN;
		snprintf(err, errlen, "shutting down");
	} else if (in->len == MAX_JOBS) {
		ret = -EAGAIN;
		snprintf(err, errlen, "%d replays are queued already; try again later", MAX_JOBS);
	} else {
		j.id = in->next_job++;
		in->jobs[(in->head + in->len) % MAX_JOBS] = j;
		in->len++;
		if (job_id)
			*job_id = j.id;
		pthread_cond_signal(&in->qcond);
	}
	pthread_mutex_unlock(&in->qlock);
	if (ret) {
		free(j.path);
		free(j.name);
	}
	return ret;
}

int pd_ingest_flush(struct pd_ingest *in, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&in->slock);
	ret = store_flush(in->store, err, errlen);
	pthread_mutex_unlock(&in->slock);
	return ret;
}

int pd_ingest_retention(struct pd_ingest *in, char *err, size_t errlen)
{
	struct store_retention_result res;
	int ret;

	if (!in->retention_days && !in->max_db_bytes)
		return 0;
	pthread_mutex_lock(&in->slock);
	ret = store_enforce_retention(in->store, in->retention_days, in->max_db_bytes, &res, err,
				      errlen);
	pthread_mutex_unlock(&in->slock);
	if (!ret && res.forks_deleted)
		pd_info("retention: deleted %llu forks, database %lld bytes",
			(unsigned long long)res.forks_deleted, (long long)res.file_bytes);
	return ret;
}

void pd_ingest_set_policy(struct pd_ingest *in, uint64_t slow_fork_ns, int retention_days,
			  int64_t max_db_bytes)
{
	atomic_store(&in->slow_fork_ns, slow_fork_ns);
	pthread_mutex_lock(&in->slock);
	in->retention_days = retention_days;
	in->max_db_bytes = max_db_bytes;
	pthread_mutex_unlock(&in->slock);
}

void pd_ingest_get_counts(struct pd_ingest *in, struct pd_ingest_counts *out)
{
	pthread_mutex_lock(&in->qlock);
	*out = in->counts;
	out->replays_queued = in->len;
	out->parent_mem = in->procmem != NULL;
	pthread_mutex_unlock(&in->qlock);
}
