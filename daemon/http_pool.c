/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's worker lanes: requests that may take long run here, not
 * on libmicrohttpd's threads, so that the cheap ones (/healthz, /metrics,
 * /api/v1/status, static files) are never queued behind them.
 *
 *   query    the store-backed endpoints (forks, stats, histogram, top, time
 *            series, doctor): one worker per online CPU (2..8), each query
 *            within a time budget from its arrival (store_set_deadline:
 *            SQLite's progress handler interrupts it, 503), at most
 *            PD_HTTP_QUERY_QUEUE waiting (more: 503 at once); one that waited
 *            its whole budget is answered 503 without running. Workers run
 *            at a lower priority (nice +5) than the server threads.
 *   control  investigations' start and end, which wait for the daemon's
 *            main loop to restart the capture (tens of seconds): one worker.
 *
 * Fed by the request handler (http_route.c), which suspends the connection
 * (MHD_suspend_connection) and hands over the request; the worker runs the
 * endpoint with replies captured into the request's answer (a thread-local
 * set around the call: pd_http_reply_json writes there instead of queueing),
 * then resumes the connection, and libmicrohttpd calls the handler again,
 * which queues the answer on its own thread. While suspended, a connection's
 * headers and arguments are read by the worker only (libmicrohttpd does not
 * touch a suspended connection). Stopping answers what still waits (503) and
 * resumes every connection before libmicrohttpd stops (it must not stop with
 * suspended connections). A request whose client hung up while it waited is
 * not run.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"
#include "util.h"

struct job {
	struct MHD_Connection *c;
	struct pd_req *r;
	pd_http_handler_fn fn;
	int64_t queued_ns, budget_ns;
	char url[PD_HTTP_MAX_URL + 1];
	char method[16];
};

struct pd_http_lane {
	struct pd_http *h;
	const char *name;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *ring;
	size_t cap, head, len;
	unsigned nthreads, started, running;
	int nice;
	int64_t budget_ns;
	bool stop;
	uint64_t served, refused, expired, timeouts, abandoned;
	pthread_t threads[PD_HTTP_MAX_WORKERS];
};

/*
 * Whether the client of @c hung up while its request waited (libmicrohttpd
 * does not watch a suspended connection): its query is not worth running.
 */
static bool client_gone(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd p;

	if (!i)
		return false;
	p = (struct pollfd){.fd = i->connect_fd, .events = POLLRDHUP};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Runs one job with its replies captured, then hands the connection back. */
static void run_job(struct pd_http_lane *l, struct job *j)
{
	int64_t now = (int64_t)pt_mono_ns(),
		deadline = l->budget_ns ? j->queued_ns + l->budget_ns : 0;
	bool expired = deadline && now >= deadline, gone = client_gone(j->c);
	int timed_out = 0;

	pd_http_capture_answers(&j->r->answer, expired ? 0 : deadline);
	if (gone)
		pd_http_reply_error(j->c, MHD_HTTP_SERVICE_UNAVAILABLE, "the client went away");
	else if (expired)
		pd_http_reply_error(j->c, MHD_HTTP_SERVICE_UNAVAILABLE,
				    "the server is busy with queries (waited %lld ms); try again",
				    (long long)((now - j->queued_ns) / 1000000));
	else
		j->fn(l->h, j->c, j->url, j->method, j->r);
	pd_http_capture_answers(NULL, 0);
	if (!j->r->answer.ready) /* the handler failed to answer at all */
		pd_http_answer_error(&j->r->answer, 500, "internal error: no answer");
	/* refused because it ran out of its budget (the store interrupted it) */
	timed_out = !gone && !expired && deadline &&
		    j->r->answer.status == MHD_HTTP_SERVICE_UNAVAILABLE &&
		    (int64_t)pt_mono_ns() >= deadline;
	pthread_mutex_lock(&l->lock);
	l->served += !gone;
	l->abandoned += gone;
	l->expired += expired && !gone;
	l->timeouts += timed_out;
	pthread_mutex_unlock(&l->lock);
	MHD_resume_connection(j->c);
}

static void *worker_main(void *arg)
{
	struct pd_http_lane *l = arg;

	pthread_setname_np(pthread_self(), "pd-http-lane");
	if (l->nice)
		setpriority(PRIO_PROCESS, (id_t)gettid(), getpriority(PRIO_PROCESS, 0) + l->nice);
	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct job j;
		bool stopping;

		while (!l->stop && !l->len)
			pthread_cond_wait(&l->wake, &l->lock);
		if (!l->len)
			break; /* stopping, nothing left */
		j = l->ring[l->head];
		l->head = (l->head + 1) % l->cap;
		l->len--;
		l->running++;
		stopping = l->stop; /* read under the lock: lane_stop() sets it */
		pthread_mutex_unlock(&l->lock);
		if (stopping) {
			pd_http_answer_error(&j.r->answer, MHD_HTTP_SERVICE_UNAVAILABLE,
					     "the server is stopping");
			MHD_resume_connection(j.c);
		} else {
			run_job(l, &j);
		}
		pthread_mutex_lock(&l->lock);
		l->running--;
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static void lane_free(struct pd_http_lane *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->wake);
	free(l->ring);
	free(l);
}

static int lane_start(struct pd_http *h, struct pd_http_lane **out, const char *name,
		      unsigned nthreads, size_t cap, int nice, int64_t budget_ns)
{
	struct pd_http_lane *l = calloc(1, sizeof(*l));
	int ret = 0;

	*out = NULL;
	cap = cap ? cap : 1;
	if (!l)
		return -ENOMEM;
	l->h = h;
	l->name = name;
	l->nthreads = nthreads > PD_HTTP_MAX_WORKERS ? PD_HTTP_MAX_WORKERS : nthreads;
	l->cap = cap;
	l->nice = nice;
	l->budget_ns = budget_ns;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	l->ring = calloc(cap, sizeof(*l->ring));
	if (!l->ring) {
		lane_free(l);
		return -ENOMEM;
	}
	while (l->started < l->nthreads &&
	       !(ret = -pthread_create(&l->threads[l->started], NULL, worker_main, l)))
		l->started++;
	*out = l;
	return l->started ? 0 : ret;
}

/* Answers what waits (503), lets the running jobs finish, joins the workers. */
static void lane_stop(struct pd_http_lane *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->wake);
	pthread_mutex_unlock(&l->lock);
	for (unsigned i = 0; i < l->started; i++)
		pthread_join(l->threads[i], NULL);
	l->started = 0;
}

static unsigned query_workers(const struct pd_http_config *cfg)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (cfg->query_threads)
		return cfg->query_threads;
	return n < 2 ? 2 : n > 8 ? 8 : (unsigned)n;
}

int pd_http_lanes_start(struct pd_http *h)
{
	int64_t budget = (int64_t)h->cfg.query_budget_ms * 1000000;
	int ret = lane_start(h, &h->lanes[PD_LANE_QUERY], "query", query_workers(&h->cfg),
			     h->cfg.query_queue, 5, budget);

	if (!ret)
		ret = lane_start(h, &h->lanes[PD_LANE_CONTROL], "control", 1, 8, 0, 0);
	return ret;
}

void pd_http_lanes_stop(struct pd_http *h)
{
	for (int i = 0; i < PD_LANE_COUNT; i++)
		lane_stop(h->lanes[i]);
}

void pd_http_lanes_free(struct pd_http *h)
{
	for (int i = 0; i < PD_LANE_COUNT; i++) {
		lane_stop(h->lanes[i]);
		lane_free(h->lanes[i]);
		h->lanes[i] = NULL;
	}
}

int pd_http_defer(struct pd_http *h, struct MHD_Connection *c, struct pd_req *r, enum pd_lane lane,
		  pd_http_handler_fn fn, const char *url, const char *method)
{
	struct pd_http_lane *l = h->lanes[lane];
	struct job *j;
	size_t waiting;

	if (!l)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no workers");
	pthread_mutex_lock(&l->lock);
	waiting = l->len;
	if (l->stop || l->len == l->cap || strlen(url) > PD_HTTP_MAX_URL) {
		l->refused += !l->stop;
		pthread_mutex_unlock(&l->lock);
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "too many requests waiting (%zu); try again", waiting);
	}
	/* suspended before a worker can see it, so that it cannot be resumed first */
	pd_http_conn_work(h, c);
	MHD_suspend_connection(c);
	j = &l->ring[(l->head + l->len) % l->cap];
	*j = (struct job){.c = c, .r = r, .fn = fn, .queued_ns = (int64_t)pt_mono_ns()};
	snprintf(j->url, sizeof(j->url), "%s", url);
	snprintf(j->method, sizeof(j->method), "%s", method);
	l->len++;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	return MHD_YES;
}

json_t *pd_http_lanes_status(struct pd_http *h)
{
	struct pd_http_lane *l = h->lanes[PD_LANE_QUERY];
	json_t *o;

	if (!l)
		return json_null();
	pthread_mutex_lock(&l->lock);
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "workers", (json_int_t)l->nthreads,
		      "running", (json_int_t)l->running, "queued", (json_int_t)l->len, "max_queued",
		      (json_int_t)l->cap, "budget_ms", (json_int_t)(l->budget_ns / 1000000),
		      "served", (json_int_t)l->served, "refused", (json_int_t)l->refused,
		      "over_budget", (json_int_t)(l->expired + l->timeouts), "abandoned",
		      (json_int_t)l->abandoned);
	pthread_mutex_unlock(&l->lock);
	return o;
}
