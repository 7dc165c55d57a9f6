/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state, shared by the files of the ptescoped program alone
 * (ptescoped.c: main and the loop; ptescoped_capture.c: the running capture;
 * ptescoped_inv.c: investigations; ptescoped_status.c: the status;
 * ptescoped_reload.c: SIGHUP). One struct daemon lives on main's stack; the
 * main thread owns it, the HTTP threads read the fields marked below under
 * d->lock through the pd_core callbacks.
 */
#ifndef PTESCOPED_INTERNAL_H
#define PTESCOPED_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "capture.h"
#include "config.h"
#include "ingest.h"
#include "investigate.h"
#include "log.h"
#include "spool.h"
#include "stats.h"
#include "store.h"
#include "tfs_lock.h"
#include "util.h"

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

/* The process's CPU time (investigations' cost). */
static inline uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ptescoped_status.c: the pd_core callbacks of /api/v1/status and /healthz. @ctx is the daemon. */
void core_status(void *ctx, json_t *st);
bool core_healthy(void *ctx);

/* ptescoped_capture.c, main thread. */
/* Copies the capture's counters into the status snapshot (and new events to the metrics). */
void snapshot(struct daemon *d);
/* The status's and the metrics' capture health. */
void set_capture_health(struct daemon *d, bool ok);
/* Starts capture in @mode with @detail, narrowed to @pids when @nr_pids; 0 or -errno (logged). */
int start_capture_at(struct daemon *d, enum pd_capture_mode mode, enum pd_detail detail,
		     const int *pids, size_t nr_pids);
/* The configured default capture; 0 or -errno (logged). */
int start_capture(struct daemon *d);
/* Stops the capture (tracefs restored) and ends its live source; 0 or -errno (logged). */
int stop_capture(struct daemon *d);
/* Around a stop and start: the watchdog's timeout raised, then given back. */
void restart_begin(struct daemon *d);
void restart_end(struct daemon *d);
/* Sets the capture up again when another tool took its setup apart. */
void check_setup(struct daemon *d);

/* ptescoped_inv.c. The pd_core callbacks (HTTP threads; they wait for the main loop). */
unsigned core_investigate(void *ctx, const struct pd_inv_request *req, json_t **body, char *err,
			  size_t errlen);
unsigned core_end_investigation(void *ctx, json_t **body, char *err, size_t errlen);
/* The investigations' list; new reference. */
json_t *core_investigations(void *ctx);
/* Main loop: answers the request in the slot (its eventfd was readable). */
void inv_serve_slot(struct daemon *d);
/* Main loop, each tick: an automatic start asked for, the active one's cost and expiry. */
void inv_tick(struct daemon *d);
/* The loop has stopped: a waiting HTTP thread gets a 503, later ones too. */
void slot_close(struct daemon *d);

/* ptescoped_reload.c, main loop: SIGHUP. */
void reload(struct daemon *d);

#endif
