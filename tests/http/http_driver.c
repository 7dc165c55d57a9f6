/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for ptescoped's core to test the HTTP layer on its own: opens
 * the database, feeds every stored fork to pd_metrics (as the core feeds
 * every fork it stores), and serves pd_http with a trivial pd_core whose
 * submit_replay runs `ptescope replay --db` on the upload synchronously (the
 * same replay path as --replay); its forks are not fed to the metrics, as
 * ptescoped feeds only its live forks.
 *
 *   http_driver --db FILE [--listen ADDR:PORT] [--token-file F] [--web-root D]
 *               [--max-upload BYTES] [--threads N] [--max-conn N] [--max-per-ip N]
 *               [--timeout S] [--comm-allow a,b,...] [--ptescope PATH]
 *               [--unhealthy-file F] [--submit-log F] [--no-detail] [--investigations]
 *               [--query-threads N] [--query-queue N] [--query-budget-ms MS]
 *               [--allowed-hosts NAME,...] [--status JSON] [--cgroup-label unit|container]
 *               [--cgroup-max N] [--trickle N]
 *
 * With --investigations the stand-in core also takes investigations: it
 * echoes the request it was handed (detail, duration_s, comm, pid) as the
 * active one, 409 while one is active, and DELETE ends it (404 when none),
 * so the HTTP layer's parsing and hand-over are tested without a kernel.
 *
 * --status merges a JSON object into the stand-in's status (what /metrics reads
 * of the capture: {"capture": {"mode": "graph", "functions": ...}}), so that the
 * metrics of a capture can be served without one. The stored forks are fed
 * to the metrics as a live host's, with their ids; with --trickle N, N of
 * them every 100 ms rather than all at start, so that a scraper sees the
 * counters grow (rate() over them has values).
 *
 * Prints "port N" once listening, then serves until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "http_internal.h"
#include "store.h"

struct driver {
	const char *db, *ptescope, *unhealthy_file, *submit_log;
	bool detail;
	bool inv_active;
	json_t *inv; /* the last request handed over */
	json_t *status; /* --status, merged into the status */
	struct pd_metrics *m;
	pthread_mutex_t lock;
	int64_t last_id, jobs;
	uint64_t forks;
	long trickle; /* forks fed per 100 ms; 0: all at start */
	atomic_bool stop; /* set by main, read by the trickle thread */
	time_t started;
};

/* Observes every fork after d->last_id (oldest first), with detail if asked;
 * with @skip, only moves past them (a replay: never in the live metrics). */
static int observe_new(struct driver *d, bool skip, size_t max)
{
	struct store_opts o = {.read_only = true};
	struct store *s;
	char err[256];
	int rc = store_open(d->db, &o, &s, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "http_driver: %s: %s\n", d->db, err);
		return rc;
	}
	for (;;) {
		struct store_fork_filter f = {.pid = -1,
					      .oldest_first = true,
					      .cursor = d->last_id,
					      .limit = max && max < 10000 ? max : 10000};
		struct store_fork_row *rows = NULL;
		int64_t next = 0;
		size_t nr = 0;

		rc = store_query_forks(s, &f, &rows, &nr, &next, err, sizeof(err));
		if (rc)
			break;
		for (size_t i = 0; i < nr; i++) {
			struct store_fork_row full;

			if (skip) {
				/* as ptescoped: an upload is not this host's live forks */
			} else if (d->detail &&
				   !store_get_fork(s, rows[i].id, &full, err, sizeof(err))) {
				pd_metrics_observe_fork(d->m, &full.fork, rows[i].id);
				pt_fork_release(&full.fork);
			} else {
				pd_metrics_observe_fork(d->m, &rows[i].fork, rows[i].id);
			}
			d->last_id = rows[i].id;
			d->forks++;
		}
		store_fork_rows_free(rows, nr);
		if (!next || !nr || max)
			break;
	}
	store_close(s);
	return rc;
}

static void core_status(void *ctx, json_t *st)
{
	struct driver *d = ctx;

	pthread_mutex_lock(&d->lock);
	json_object_set_new(st, "version", json_string(PTESCOPE_VERSION));
	json_object_set_new(
	    st, "capture",
	    json_pack("{s:s,s:s}", "mode", "off", "reason", "http_driver (test stand-in)"));
	json_object_set_new(st, "database", json_pack("{s:s}", "path", d->db));
	json_object_set_new(st, "forks_stored", json_integer((json_int_t)d->forks));
	json_object_set_new(st, "uptime_s", json_integer((json_int_t)(time(NULL) - d->started)));
	if (d->inv_active)
		json_object_set_new(
		    st, "investigation",
		    json_pack("{s:b,s:O,s:s,s:I,s:f,s:i,s:i,s:I,s:{s:f,s:f}}", "active", 1, "detail",
			      json_object_get(d->inv, "detail"), "reason", "api", "until_wall_ns",
			      (json_int_t)(time(NULL) + 60) * 1000000000, "remaining_s", 60.0,
			      "forks", 3, "events", 1000, "cpu_ns", (json_int_t)12500000, "budget",
			      "share", 0.05, "used", 0.0125));
	else
		json_object_set_new(st, "investigation", json_pack("{s:b}", "active", 0));
	if (d->status)
		json_object_update(st, d->status);
	pthread_mutex_unlock(&d->lock);
}

static bool core_healthy(void *ctx)
{
	struct driver *d = ctx;

	return !d->unhealthy_file || access(d->unhealthy_file, F_OK) != 0;
}

static int core_submit(void *ctx, const char *path, const char *name, int64_t *job_id, char *err,
		       size_t errlen)
{
	struct driver *d = ctx;
	int status = 0, ret = 0;
	pid_t pid;

	pthread_mutex_lock(&d->lock);
	*job_id = ++d->jobs;
	if (d->submit_log) {
		FILE *f = fopen(d->submit_log, "ae");

		if (f) {
			fprintf(f, "%" PRId64 " %s %s\n", *job_id, name, path);
			fclose(f);
		}
	}
	if (!d->ptescope)
		goto out; /* only record the call; the file is ours to delete */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execl(d->ptescope, "ptescope", "replay", "--db", d->db, path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		snprintf(err, errlen, "replay of %s failed (status %d)", name, status);
		ret = -EINVAL;
		goto out;
	}
	observe_new(d, true, 0);
out:
	unlink(path);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* --trickle: feeds d->trickle more stored forks every 100 ms until stopped. */
static void *trickle_main(void *arg)
{
	struct driver *d = arg;
	struct timespec ts = {0, 100000000};

	while (!atomic_load(&d->stop)) {
		pthread_mutex_lock(&d->lock);
		observe_new(d, false, (size_t)d->trickle);
		pthread_mutex_unlock(&d->lock);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static json_t *inv_echo(const struct pd_inv_request *r, bool active)
{
	return json_pack("{s:b,s:s,s:I,s:o,s:o,s:s}", "active", active, "detail",
			 r->detail == PD_DETAIL_PTE ? "pte" : "section", "duration_s",
			 (json_int_t)r->duration_s, "comm",
			 r->comm[0] ? json_string(r->comm) : json_null(), "pid",
			 r->pid >= 0 ? json_integer(r->pid) : json_null(), "reason", "api");
}

static unsigned core_investigate(void *ctx, const struct pd_inv_request *req, json_t **body,
				 char *err, size_t errlen)
{
	struct driver *d = ctx;
	unsigned status = 202;

	pthread_mutex_lock(&d->lock);
	if (d->inv_active) {
		snprintf(err, errlen, "an investigation is active");
		status = 409;
	} else {
		d->inv_active = true;
		json_decref(d->inv);
		d->inv = inv_echo(req, true);
		*body = json_deep_copy(d->inv);
	}
	pthread_mutex_unlock(&d->lock);
	return status;
}

static unsigned core_end_investigation(void *ctx, json_t **body, char *err, size_t errlen)
{
	struct driver *d = ctx;
	unsigned status = 200;

	pthread_mutex_lock(&d->lock);
	if (!d->inv_active) {
		snprintf(err, errlen, "no investigation is active");
		status = 404;
	} else {
		d->inv_active = false;
		json_object_set_new(d->inv, "active", json_false());
		*body = json_deep_copy(d->inv);
	}
	pthread_mutex_unlock(&d->lock);
	return status;
}

static json_t *core_investigations(void *ctx)
{
	struct driver *d = ctx;
	json_t *o;

	pthread_mutex_lock(&d->lock);
	o = json_pack("{s:o,s:[]}", "active",
		      d->inv_active ? json_deep_copy(d->inv) : json_null(), "recent");
	pthread_mutex_unlock(&d->lock);
	return o;
}

static unsigned long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "http_driver: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", 1, 0, 'd'},
	    {"listen", 1, 0, 'l'},
	    {"token-file", 1, 0, 't'},
	    {"web-root", 1, 0, 'w'},
	    {"max-upload", 1, 0, 'u'},
	    {"threads", 1, 0, 'T'},
	    {"max-conn", 1, 0, 'c'},
	    {"max-per-ip", 1, 0, 'i'},
	    {"timeout", 1, 0, 'o'},
	    {"comm-allow", 1, 0, 'a'},
	    {"ptescope", 1, 0, 'p'},
	    {"unhealthy-file", 1, 0, 'U'},
	    {"submit-log", 1, 0, 'L'},
	    {"no-detail", 0, 0, 'N'},
	    {"investigations", 0, 0, 'I'},
	    {"query-threads", 1, 0, 'Q'},
	    {"query-queue", 1, 0, 'q'},
	    {"query-budget-ms", 1, 0, 'B'},
	    {"allowed-hosts", 1, 0, 'H'},
	    {"status", 1, 0, 'S'},
	    {"cgroup-label", 1, 0, 'G'},
	    {"cgroup-max", 1, 0, 'X'},
	    {"trickle", 1, 0, 'K'},
	    {0, 0, 0, 0},
	};
	struct pd_http_config cfg = {.listen = "127.0.0.1:0"};
	struct driver d = {.detail = true, .started = time(NULL)};
	const char *allow[64];
	struct pd_metrics_opts mo = {.comm_allow = allow};
	struct pd_core core = {.ctx = &d,
			       .status = core_status,
			       .submit_replay = core_submit,
			       .healthy = core_healthy};
	struct pd_http *h;
	char err[256];
	sigset_t set;
	pthread_t trickler;
	int opt, sig;

	/* Dies with the test that started it, whatever killed the test. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	pthread_mutex_init(&d.lock, NULL);
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			d.db = cfg.db_path = optarg;
			break;
		case 'l':
			cfg.listen = optarg;
			break;
		case 't':
			cfg.token_file = optarg;
			break;
		case 'w':
			cfg.web_root = optarg;
			break;
		case 'u':
			cfg.max_upload_bytes = num(optarg, "--max-upload");
			break;
		case 'T':
			cfg.threads = (unsigned)num(optarg, "--threads");
			break;
		case 'c':
			cfg.max_connections = (unsigned)num(optarg, "--max-conn");
			break;
		case 'i':
			cfg.max_per_ip = (unsigned)num(optarg, "--max-per-ip");
			break;
		case 'o':
			cfg.timeout_s = (unsigned)num(optarg, "--timeout");
			break;
		case 'a':
			for (char *tok = strtok(optarg, ","); tok && mo.nr_comm_allow < 64;
			     tok = strtok(NULL, ","))
				allow[mo.nr_comm_allow++] = tok;
			break;
		case 'p':
			d.ptescope = optarg;
			break;
		case 'U':
			d.unhealthy_file = optarg;
			break;
		case 'L':
			d.submit_log = optarg;
			break;
		case 'N':
			d.detail = false;
			break;
		case 'Q':
			cfg.query_threads = (unsigned)num(optarg, "--query-threads");
			break;
		case 'q':
			cfg.query_queue = (unsigned)num(optarg, "--query-queue");
			break;
		case 'B':
			cfg.query_budget_ms = (unsigned)num(optarg, "--query-budget-ms");
			break;
		case 'H':
			cfg.allowed_hosts = optarg;
			break;
		case 'S':
			if (!(d.status = json_loads(optarg, 0, NULL)) || !json_is_object(d.status)) {
				fprintf(stderr, "http_driver: --status: not a JSON object\n");
				return 2;
			}
			break;
		case 'G':
			mo.cgroup_label = !strcmp(optarg, "unit")	 ? PD_CG_LABEL_UNIT
					  : !strcmp(optarg, "container") ? PD_CG_LABEL_CONTAINER
									 : PD_CG_LABEL_NONE;
			break;
		case 'X':
			mo.cgroup_max = (size_t)num(optarg, "--cgroup-max");
			break;
		case 'K':
			d.trickle = (long)num(optarg, "--trickle");
			break;
		case 'I':
			core.investigate = core_investigate;
			core.end_investigation = core_end_investigation;
			core.investigations = core_investigations;
			break;
		default:
			return 2;
		}
	}
	if (!d.db) {
		fprintf(stderr, "usage: http_driver --db FILE [options]\n");
		return 2;
	}
	if (pd_metrics_new(&mo, &d.m)) {
		fprintf(stderr, "http_driver: out of memory\n");
		return 1;
	}
	pd_metrics_set_capture(d.m, "off", true);
	if (!d.trickle && observe_new(&d, false, 0))
		return 1;
	pd_metrics_add_events(d.m, "replay", d.forks * 100, 0);
	/* Block the signals before the server's threads exist, so sigwait gets them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pd_http_start(&cfg, &core, d.m, &h, err, sizeof(err))) {
		fprintf(stderr, "http_driver: %s\n", err);
		return 1;
	}
	if (d.trickle && pthread_create(&trickler, NULL, trickle_main, &d)) {
		fprintf(stderr, "http_driver: cannot start the trickle\n");
		return 1;
	}
	printf("port %d\n", pd_http_port(h));
	fflush(stdout);
	sigwait(&set, &sig);
	atomic_store(&d.stop, true);
	if (d.trickle)
		pthread_join(trickler, NULL);
	pd_http_stop(h);
	pd_metrics_free(d.m);
	json_decref(d.inv);
	json_decref(d.status);
	pthread_mutex_destroy(&d.lock);
	return 0;
}
