/* SPDX-License-Identifier: MIT */
/*
 * ptescoped: the daemon's main and its loop. Reads its configuration,
 * repairs what a dead run left in tracefs, opens the store (ingest), starts
 * live capture (ptescoped_capture.c) and the HTTP listener (api.h), tells
 * systemd it is ready only once all three are up, then runs one loop on the
 * main thread: a timerfd tick reads the trace buffers, commits the store
 * once a second and pets the watchdog; a signalfd turns SIGTERM/SIGINT into
 * an orderly stop (tracefs restored) and SIGHUP into a config reload
 * (ptescoped_reload.c); the investigation slot's eventfd hands it HTTP
 * requests (ptescoped_inv.c).
 *
 * The daemon's state lives in one struct on main's stack
 * (ptescoped_internal.h); the HTTP threads see it only through the pd_core
 * callbacks, under its mutex.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
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

#include "ptescoped_internal.h"
#include "repair.h"
#include "yield.h"

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
	now = pt_mono_ns();
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
	    .last_flush = pt_mono_ns(), .last_ret = pt_mono_ns(), .last_check = pt_mono_ns()};
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
 * share of the CPU. On one busy CPU that wait ends where a task runs past its
 * slice: in a long fork, at its next lock break (operations.md, "What it
 * costs"). SCHED_IDLE (--sched idle) runs on time no other task wants, and a
 * small share, its threads yielding every 200 us of work (yield.h). Its
 * threads inherit the policy, but for the HTTP threads (start_http).
 */
/* The calling thread's policy (Linux: pid 0 is the calling thread). 0 or -1 (errno). */
static int set_thread_policy(int policy)
{
	struct sched_param sp = {.sched_priority = 0};

	return sched_setscheduler(0, policy, &sp);
}

/* The daemon's policy (see above), set before any thread is made. */
static void sched_policy(enum pd_sched which)
{
	int policy = which == PD_SCHED_IDLE ? SCHED_IDLE : SCHED_BATCH;
	const char *name = which == PD_SCHED_IDLE ? "SCHED_IDLE" : "SCHED_BATCH";

	pd_yield_enable(which == PD_SCHED_IDLE);
	if (set_thread_policy(policy))
		pd_warn("cannot run as %s (%s): the daemon's wakeups may preempt forks", name,
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
	d->start_mono_ns = pt_mono_ns();
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
	bool idle = d->cfg.sched == PD_SCHED_IDLE;
	int ret;

	/* the HTTP threads (libmicrohttpd's, the store lanes, the reaper) take the
	 * policy of the thread that starts them: SCHED_BATCH under --sched idle
	 * too, so that a scrape or /healthz on a host whose CPUs are all busy is
	 * answered, not left for idle time */
	if (idle && set_thread_policy(SCHED_BATCH))
		pd_debug("the HTTP threads stay SCHED_IDLE: %s", strerror(errno));
	ret = pd_http_start(&hc, &core, d->metrics, &d->http, err, sizeof(err));
	if (idle && set_thread_policy(SCHED_IDLE))
		pd_warn("the main thread stays SCHED_BATCH: %s", strerror(errno));
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
		pd_inv_finish(&d->inv, PD_INV_END_STOP, pt_mono_ns(), store_now_ns(), cpu_ns());
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
	sched_policy(d.cfg.sched);
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
