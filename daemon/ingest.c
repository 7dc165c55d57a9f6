/* SPDX-License-Identifier: MIT */
/*
 * The store writer shared by live capture (the live writer thread, fed by
 * the capture thread through livequeue.h) and replays (one worker thread),
 * see ingest.h. Lock order: `qlock` (the job queue and the counters) is
 * never held while taking `slock` (the store writer), and the reverse only
 * for counter updates, which take no other lock.
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

#include "livequeue.h"
#include "log.h"
#include "replay.h"
#include "spool.h"
#include "store_sink.h"
#include "util.h"
#include "yield.h"

#define MAX_JOBS 64
/* a spooled upload whose replay failed other than on the file itself is
 * tried again, RETRY_NS later times the attempts so far, MAX_TRIES in all in
 * one run; it stays in the spool for the next start whatever happens */
#define RETRY_NS (10 * 1000000000ll)
#define MAX_TRIES 3

struct job {
	int64_t id;
	char *path, *name;
	bool delete_after;
	unsigned tries;	    /* attempts that failed so far */
	int64_t not_before; /* CLOCK_MONOTONIC ns; 0: at once */
};

struct pd_ingest {
	struct store *store;
	struct store_sink *sink; /* replays into the store, under slock */
	struct pd_metrics *metrics;
	struct pd_spool *spool; /* not owned */
	char *db_path;
	struct pd_liveq *liveq; /* live forks on their way to the store */
	pthread_t live_writer;
	bool live_writer_started;
	pthread_mutex_t slock; /* the store writer */
	int64_t live_source;   /* the capture thread's: the source of forks it hands over */
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

/*
 * Under slock: the store's write health after an operation. A change is
 * logged once (the first failure, the first success after failures) and
 * handed to the counters and the metrics.
 */
static void track_health(struct pd_ingest *in)
{
	struct store_write_health h;
	bool was;
	uint64_t lost;

	store_write_health(in->store, &h);
	pthread_mutex_lock(&in->qlock);
	was = in->counts.store_healthy;
	in->counts.store_healthy = !h.failing;
	in->counts.store_write_failures = h.failures;
	lost = in->counts.live_store_failed;
	pthread_mutex_unlock(&in->qlock);
	if (was && h.failing)
		pd_err("database %s: writes are failing (%s); /healthz answers 503 until one "
		       "succeeds",
		       in->db_path, h.last_error);
	else if (!was && !h.failing)
		pd_notice("database %s: writes succeed again (%llu failed so far)", in->db_path,
			  (unsigned long long)h.failures);
	pd_metrics_set_store(in->metrics, !h.failing, h.failures, lost);
}

bool pd_ingest_healthy(struct pd_ingest *in)
{
	bool ok;

	pthread_mutex_lock(&in->qlock);
	ok = in->counts.store_healthy;
	pthread_mutex_unlock(&in->qlock);
	return ok;
}

int pd_ingest_live_fork(const struct pt_fork *f, void *ctx)
{
	struct pd_ingest *in = ctx;
	uint64_t slow = atomic_load(&in->slow_fork_ns), d = pt_fork_total_ns(f);
	struct pt_fork lean = *f;
	bool dropped = false;
	int ret;

	if (!in->live_source) {
		pd_err("storing a live fork: no live source");
		return -EINVAL;
	}
	if (slow && (f->nr_vma || f->nr_pass) && d != PT_NO_TIME && d < slow) {
		lean.vma = NULL;
		lean.nr_vma = 0;
		lean.pass = NULL;
		lean.nr_pass = 0;
		dropped = true;
	}
	ret = pd_liveq_push(in->liveq, &lean, in->live_source, pt_mono_ns());
	if (ret) {
		pd_err("storing a live fork: %s", strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&in->qlock);
	in->counts.live_detail_dropped += dropped;
	pthread_mutex_unlock(&in->qlock);
	return 0;
}

/* Stores one live fork taken from the queue (the live writer thread). */
static void store_live(struct pd_ingest *in, struct pd_live_item *it)
{
	const struct pt_fork *f = &it->f;
	char err[512];
	bool unknown = false;
	int64_t id = 0;
	int ret;

	pthread_mutex_lock(&in->slock);
	ret = store_insert_fork(in->store, it->source_id, f, &id, err, sizeof(err));
	if (ret) {
		pthread_mutex_lock(&in->qlock);
		in->counts.live_store_failed++;
		pthread_mutex_unlock(&in->qlock);
	}
	track_health(in);
	pthread_mutex_unlock(&in->slock);
	if (ret) {
		pd_debug("storing a live fork of pid %d: %s", f->parent_pid, err);
		return;
	}
	if (in->metrics)
		pd_metrics_observe_fork(in->metrics, f, id);
	pthread_mutex_lock(&in->qlock);
	in->counts.live_forks++;
	unknown = (f->flags & PT_FORK_UNKNOWN_LOOP) && !in->counts.live_unknown_loop++;
	pthread_mutex_unlock(&in->qlock);
	if (unknown)
		pd_warn("fork of pid %d: PTEs copied outside every pass the rules know: this "
			"kernel's copy loop is not recognised, its forks are flagged unknown_loop "
			"with null passes and lock breaks (docs/kernels.md)",
			f->parent_pid);
}

static void *live_writer_main(void *arg)
{
	struct pd_ingest *in = arg;
	struct pd_live_item it;

	pthread_setname_np(pthread_self(), "pd-live-writer");
	while (pd_liveq_pop(in->liveq, &it) == 1) {
		pd_yield_point();
		store_live(in, &it);
		pt_fork_release(&it.f);
		pd_liveq_done(in->liveq);
	}
	return NULL;
}

static void slock_take(void *ctx)
{
	pthread_mutex_lock(&((struct pd_ingest *)ctx)->slock);
}

static void slock_give(void *ctx)
{
	pthread_mutex_unlock(&((struct pd_ingest *)ctx)->slock);
}

/* Each replayed fork, once stored: shutdown stops the replay. The live metrics
 * never see it (another host's trace is not this host's forks): it counts in
 * ptescope_replay_forks_total, from the counts. */
static int replay_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct pd_ingest *in = ctx;

	if (atomic_load(&in->cancel)) {
		snprintf(err, errlen, "abandoned at shutdown");
		return -ECANCELED;
	}
	(void)f;
	return 0;
}

/* One replay (analyzer/replay.h into the store's sink): 0 stored, 1 skipped
 * (stored before), negative errno; *bad_input: the file itself was refused. */
static int replay_one(struct pd_ingest *in, const struct job *j, bool *bad_input, char *err,
		      size_t errlen)
{
	/* text in the reader helper too: uploads are anyone's, and we run as root */
	struct pt_replay_opts o = {.name = j->name,
				   .sink = store_sink_replay(in->sink),
				   .on_fork = replay_fork,
				   .ctx = in,
				   .sandbox_text = true};
	struct pt_replay_result res;
	int ret = pt_replay_file(j->path, &o, &res, err, errlen);

	*bad_input = ret && res.bad_input;
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

/*
 * Under qlock: waits for a job that may run now and takes it out of the
 * queue into @j. False when stopping.
 */
static bool take_job(struct pd_ingest *in, struct job *j)
{
	for (;;) {
		int64_t now = (int64_t)pt_mono_ns(), next = 0;
		struct timespec ts;

		if (in->stop)
			return false;
		for (size_t k = 0; k < in->len; k++) {
			struct job *c = &in->jobs[(in->head + k) % MAX_JOBS];

			if (c->not_before <= now) {
				*j = *c;
				/* close the gap: the jobs after it move up one */
				for (size_t m = k; m + 1 < in->len; m++)
					in->jobs[(in->head + m) % MAX_JOBS] =
					    in->jobs[(in->head + m + 1) % MAX_JOBS];
				in->len--;
				return true;
			}
			if (!next || c->not_before < next)
				next = c->not_before;
		}
		if (!next) {
			pthread_cond_wait(&in->qcond, &in->qlock);
			continue;
		}
		ts.tv_sec = (time_t)(next / 1000000000);
		ts.tv_nsec = (long)(next % 1000000000);
		pthread_cond_timedwait(&in->qcond, &in->qlock, &ts);
	}
}

/*
 * After a failed replay of an upload: the spool keeps it unless the file
 * itself was refused; it is tried again later in this run (queued again:
 * true) or at the next start.
 */
static bool keep_upload(struct pd_ingest *in, struct job *j, bool bad_input)
{
	if (bad_input) {
		pd_spool_remove(in->spool, j->path);
		return false;
	}
	if (atomic_load(&in->cancel)) {
		pd_info("upload %s: replay interrupted, kept in the spool for the next start",
			j->name);
		return false;
	}
	if (++j->tries >= MAX_TRIES) {
		pd_warn("upload %s: %u attempts failed; kept in the spool for the next start",
			j->name, j->tries);
		return false;
	}
	j->not_before = (int64_t)pt_mono_ns() + RETRY_NS * j->tries;
	pd_info("upload %s: kept in the spool, tried again in %lld s", j->name,
		(long long)(RETRY_NS * j->tries / 1000000000));
	return true;
}

static void *worker_main(void *arg)
{
	struct pd_ingest *in = arg;

	pthread_setname_np(pthread_self(), "pd-replay");
	for (;;) {
		struct job j;
		char err[512] = "";
		bool bad = false, again = false;
		int ret;

		pthread_mutex_lock(&in->qlock);
		if (!take_job(in, &j)) {
			pthread_mutex_unlock(&in->qlock);
			return NULL;
		}
		in->running_job = true;
		pthread_mutex_unlock(&in->qlock);

		ret = replay_one(in, &j, &bad, err, sizeof(err));
		pthread_mutex_lock(&in->slock);
		track_health(in);
		pthread_mutex_unlock(&in->slock);
		if (ret < 0)
			pd_err("replay %s: %s", j.name, err);
		else if (ret > 0)
			pd_info("replay %s: already stored, skipped", j.name);
		if (j.delete_after && ret < 0)
			again = keep_upload(in, &j, bad);
		else if (j.delete_after)
			pd_spool_remove(in->spool, j.path);

		pthread_mutex_lock(&in->qlock);
		in->running_job = false;
		if (again) /* its place was freed when it was taken: there is room */
			in->jobs[(in->head + in->len++) % MAX_JOBS] = j;
		else if (ret < 0)
			in->counts.replays_failed++;
		else if (ret > 0)
			in->counts.replays_skipped++;
		else
			in->counts.replays_done++;
		pthread_mutex_unlock(&in->qlock);
		if (!again) {
			free(j.path);
			free(j.name);
		}
	}
}

/* The parts pd_ingest_open starts, undone (accepts a half-built @in). */
static void ingest_free(struct pd_ingest *in)
{
	pd_liveq_free(in->liveq);
	store_sink_free(in->sink);
	store_close(in->store);
	pthread_mutex_destroy(&in->slock);
	pthread_mutex_destroy(&in->qlock);
	pthread_cond_destroy(&in->qcond);
	free(in->db_path);
	free(in);
}

/* The live queue, its writer and the replay worker. 0 or -errno with @err. */
static int start_threads(struct pd_ingest *in, const struct pd_ingest_opts *o, char *err,
			 size_t errlen)
{
	struct pd_liveq_opts lo = {.parent_mem = !o->no_parent_mem,
				   .cgroup = !o->no_fork_cgroup,
				   .procmem = {.proc_root = o->proc_root}};
	int ret = pd_liveq_new(&lo, &in->liveq);

	if (ret) {
		snprintf(err, errlen, "cannot start the live queue: %s", strerror(-ret));
		return ret;
	}
	ret = -pthread_create(&in->live_writer, NULL, live_writer_main, in);
	if (ret) {
		snprintf(err, errlen, "cannot start the live writer thread: %s", strerror(-ret));
		return ret;
	}
	in->live_writer_started = true;
	ret = -pthread_create(&in->worker, NULL, worker_main, in);
	if (ret) {
		snprintf(err, errlen, "cannot start the replay thread: %s", strerror(-ret));
		return ret;
	}
	in->worker_started = true;
	return 0;
}

/* Stops the threads start_threads started (a replay in progress is abandoned). */
static void stop_threads(struct pd_ingest *in)
{
	if (in->live_writer_started) {
		pd_liveq_close(in->liveq);
		pthread_join(in->live_writer, NULL);
		in->live_writer_started = false;
	}
	if (in->worker_started) {
		pthread_mutex_lock(&in->qlock);
		in->stop = true;
		atomic_store(&in->cancel, true);
		pthread_cond_broadcast(&in->qcond);
		pthread_mutex_unlock(&in->qlock);
		pthread_join(in->worker, NULL);
		in->worker_started = false;
	}
}

int pd_ingest_open(const struct pd_ingest_opts *o, struct pd_ingest **out, char *err,
		   size_t errlen)
{
	struct store_opts so = {.sync_full = o->sync_full, .yield = pd_yield_point};
	struct store_sink_opts sink_opts = {.lock = slock_take, .unlock = slock_give};
	struct pd_ingest *in = calloc(1, sizeof(*in));
	pthread_condattr_t ca;
	int ret;

	if (!in)
		return -ENOMEM;
	pthread_mutex_init(&in->slock, NULL);
	pthread_mutex_init(&in->qlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* retries wait by the monotonic clock */
	pthread_cond_init(&in->qcond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&in->slow_fork_ns, o->slow_fork_ns);
	atomic_init(&in->cancel, false);
	in->metrics = o->metrics;
	in->spool = o->spool;
	in->retention_days = o->retention_days;
	in->max_db_bytes = o->max_db_bytes;
	in->next_job = 1;
	in->counts.store_healthy = true;
	in->counts.parent_mem = !o->no_parent_mem;
	in->db_path = strdup(o->db_path);
	if (!in->db_path) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = store_open(o->db_path, &so, &in->store, err, errlen);
	if (ret)
		goto fail;
	sink_opts.lock_ctx = in;
	ret = store_sink_new(in->store, &sink_opts, &in->sink);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = start_threads(in, o, err, errlen);
	if (ret)
		goto fail;
	*out = in;
	return 0;
fail:
	stop_threads(in);
	ingest_free(in);
	return ret;
}

int pd_ingest_close(struct pd_ingest *in, char *err, size_t errlen)
{
	int ret;

	if (!in)
		return 0;
	stop_threads(in);
	for (; in->len; in->len--, in->head = (in->head + 1) % MAX_JOBS) {
		struct job *j = &in->jobs[in->head];

		if (j->delete_after)
			pd_info("upload %s: not replayed yet, kept in the spool for the next start",
				j->name);
		free(j->path);
		free(j->name);
	}
	store_sink_free(in->sink);
	in->sink = NULL;
	ret = store_close(in->store);
	in->store = NULL;
	if (ret)
		snprintf(err, errlen, "closing the database: %s", strerror(-ret));
	ingest_free(in);
	return ret;
}

int pd_ingest_live_begin(struct pd_ingest *in, const char *kernel, int64_t clock_offset_ns,
			 char *err, size_t errlen)
{
	char host[256] = "";
	bool done = false;
	int64_t id = 0;
	int ret;

	gethostname(host, sizeof(host) - 1);
	struct store_source_info si = {.kind = STORE_SOURCE_LIVE,
				       .host = host[0] ? host : NULL,
				       .format = "live",
				       .kernel = kernel,
				       .size_bytes = -1,
				       .clock_offset_ns = clock_offset_ns};

	pthread_mutex_lock(&in->slock);
	ret = store_source_begin(in->store, &si, &id, &done, err, errlen);
	track_health(in);
	pthread_mutex_unlock(&in->slock);
	in->live_source = ret ? 0 : id;
	pthread_mutex_lock(&in->qlock);
	in->counts.live_source_id = in->live_source;
	pthread_mutex_unlock(&in->qlock);
	return ret;
}

int pd_ingest_live_end(struct pd_ingest *in, const struct pt_input_stats *st, char *err,
		       size_t errlen)
{
	int ret;

	if (!in->live_source)
		return 0;
	pd_liveq_drain(in->liveq); /* its forks stored first: at most their wait for /proc */
	pthread_mutex_lock(&in->slock);
	ret = store_source_end(in->store, in->live_source, st, err, errlen);
	track_health(in);
	pthread_mutex_unlock(&in->slock);
	in->live_source = 0;
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
	} else if (in->len + in->running_job >= MAX_JOBS) { /* the running one keeps its place */
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
	struct store_write_health h;
	int ret;

	pthread_mutex_lock(&in->slock);
	store_write_health(in->store, &h);
	ret = store_flush(in->store, err, errlen);
	/* nothing was pending: a small write tells whether writes go through again */
	if (!ret && h.failing) {
		store_write_health(in->store, &h);
		if (h.failing)
			ret = store_probe_write(in->store, err, errlen);
	}
	track_health(in);
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
	track_health(in);
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
	struct pd_liveq_counts lc;

	pd_liveq_counts(in->liveq, &lc);
	pthread_mutex_lock(&in->qlock);
	*out = in->counts;
	out->replays_queued = in->len + in->running_job;
	pthread_mutex_unlock(&in->qlock);
	out->parent_mem_reads = lc.reads;
	out->parent_mem_skipped = lc.skipped;
	out->parent_mem_late = lc.late;
	out->live_queued = lc.queued;
}
