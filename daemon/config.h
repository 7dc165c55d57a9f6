/* SPDX-License-Identifier: MIT */
/*
 * ptescoped's configuration: defaults, then the config file (--config), then
 * the command line, each later source overriding the earlier. The config
 * file holds "key = value" lines whose keys are the long option names
 * ("detail = section", "replay = /srv/a.dat"); '#' starts a comment.
 *
 * Every key is described once, in a table (pd_config_keys: name, type,
 * field offset, range), and every value, from the command line or the
 * file alike, is validated by that table's one parser for its type; a bad
 * one is refused with a message naming the key, the value and where it came
 * from ("FILE:LINE").
 * SIGHUP reloads by building a fresh config the same way (pd_config_load)
 * and letting the main apply what can change live.
 */
#ifndef PTESCOPED_CONFIG_H
#define PTESCOPED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum pd_capture_mode { PD_CAPTURE_AUTO, PD_CAPTURE_GRAPH, PD_CAPTURE_SYSCALL, PD_CAPTURE_OFF };
enum pd_detail { PD_DETAIL_FORK, PD_DETAIL_SECTION, PD_DETAIL_PTE };
/* What hooks the functions at fork detail: kprobe events where the kernel
 * has them (auto), or always kprobes, or always function_graph */
enum pd_fork_hooks { PD_HOOKS_AUTO, PD_HOOKS_KPROBE, PD_HOOKS_GRAPH };
/* Fork detail by kprobes: also the two probes inside copy_page_range that
 * give each copy_pte_range pass (auto: where the kernel's code is understood) */
enum pd_pass_probes { PD_PASS_PROBES_AUTO, PD_PASS_PROBES_OFF, PD_PASS_PROBES_CALLS };
/* The daemon's scheduling policy: SCHED_BATCH (never preempts on waking) or
 * SCHED_IDLE (runs on CPU time no other task wants, and a small share) */
enum pd_sched { PD_SCHED_BATCH, PD_SCHED_IDLE };

#define PD_MAX_REPLAYS 64

struct pd_config {
	char *config_path;	 /* NULL: none */
	char *db_path;		 /* --db, default /var/lib/ptescope/ptescope.db */
	char *listen;		 /* --listen ADDR:PORT, default 127.0.0.1:9466 */
	enum pd_capture_mode capture;
	enum pd_detail detail;
	enum pd_fork_hooks fork_hooks; /* --fork-hooks, default auto */
	enum pd_pass_probes pass_probes; /* --pass-probes, default auto */
	enum pd_sched sched;		 /* --sched, default batch */
	char *replay[PD_MAX_REPLAYS];
	size_t nr_replay;
	bool exit_after_replay;	 /* --exit-after-replay: with --capture off, exit when done */
	bool force;		 /* --force: take over a top-level tracefs others set up */
	bool preemptions;	 /* graph: sched_switch preemptions (copy_resched), default on */
	bool parent_mem;	 /* live forks: the parent's memory from /proc, default on */
	char *instance;		 /* --instance NAME, default "ptescoped" */
	char *state_file;	 /* --state-file, default /var/lib/ptescope/tracefs-state */
	char *tracefs;		 /* --tracefs DIR, NULL: found by libtracefs */
	char *lock_dir;		 /* --lock-dir DIR, default /run/ptescope (tfs_lock.h) */
	bool repair;		 /* --repair (command line only): repair tracefs, then exit */
	char *kernel_btf;	 /* --kernel-btf FILE, NULL: /sys/kernel/btf/vmlinux */
	unsigned buffer_kb;	 /* --buffer-kb per CPU, 0: chosen by mode and detail */
	unsigned buffer_total_mb; /* --buffer-total-mb: all CPUs' buffers at most, default 256 */
	unsigned poll_ms;	 /* --poll-ms, default 1000 */
	unsigned watermark_pct;	 /* --buffer-watermark, percent, default 25; 0: off */
	uint64_t slow_fork_us;	 /* --slow-fork-us: keep detail only above, 0: all */
	enum pd_log_level log_level;
	char *web_root;		 /* --web-root, NULL: none */
	char *token_file;	 /* --token-file, NULL: uploads off */
	uint64_t max_upload_mb;	 /* --max-upload-mb, default 256 */
	uint64_t spool_max_mb;	 /* --spool-max-mb: uploads waiting and arriving, default 1024 */
	unsigned spool_max_files; /* --spool-max-files, default 64 */
	int retention_days;	 /* --retention-days, 0: forever */
	int64_t max_db_mb;	 /* --max-db-mb, 0: no limit */
	int db_sync_full;	 /* --db-sync: 0 normal, 1 full */
	char *comm_allow;	 /* --comm-allow a,b,c: metric label values, NULL: none */
	bool fork_cgroup;	 /* live forks: the parent's cgroup from /proc, default on */
	int metrics_cgroup_label; /* --metrics-cgroup-label: 0 none, 1 unit, 2 container */
	unsigned metrics_cgroup_max; /* --metrics-cgroup-max: label values before "other" */
	char *allowed_hosts;	 /* --allowed-hosts a,b: Host names served, NULL: loopback only */
	/* investigations: deeper detail for a bounded time (investigate.h) */
	unsigned investigation_max_s;	   /* --investigation-max-s, default 600 */
	uint64_t auto_investigate_us;	   /* --auto-investigate-us, 0: off */
	unsigned auto_investigate_s;	   /* --auto-investigate-s, default 30 */
	double investigation_budget;	   /* --investigation-budget, share of an hour */
	unsigned investigation_cooldown_s; /* --investigation-cooldown-s, default 300 */
};

/* Value types of the configuration table; each has one parser. */
enum pd_config_type {
	PD_CFG_BOOL,	 /* yes|no|true|false|1|0, or a bare flag */
	PD_CFG_UINT,	 /* unsigned, in [min, max] */
	PD_CFG_U64,	 /* uint64_t, in [min, max] */
	PD_CFG_INT,	 /* int, in [min, max] */
	PD_CFG_I64,	 /* int64_t, in [min, max] */
	PD_CFG_DOUBLE,	 /* double, in [min, max] */
	PD_CFG_ENUM,	 /* int: index into names */
	PD_CFG_STRING,	 /* char *, not empty */
	PD_CFG_ABSPATH,	 /* char *, starts with '/' */
	PD_CFG_LISTEN,	 /* char *, ADDR:PORT */
	PD_CFG_INSTANCE, /* char *, 1-64 of A-Z a-z 0-9 _ - . */
	PD_CFG_COMMS,	 /* char *, comma-separated comms (at most 64 of 1-15 bytes) */
	PD_CFG_HOSTS,	 /* char *, comma-separated host names (at most 16 of 1-253 bytes) */
	PD_CFG_APPEND,	 /* one more of replay[] */
	PD_CFG_LOGLEVEL, /* enum pd_log_level */
};

/* One configuration key: the long option and config-file name alike. */
struct pd_config_key {
	const char *key;
	enum pd_config_type type;
	size_t offset;		  /* of the field in struct pd_config */
	double min, max;	  /* numeric types */
	const char *const *names; /* PD_CFG_ENUM: NULL-terminated */
	const char *arg;	  /* for --help: "N", "FILE"; NULL for a flag */
	const char *help;	  /* for --help and messages */
};

/* The table, in --help order; *nr gets its length. Static storage. */
const struct pd_config_key *pd_config_keys(size_t *nr);

/* Sets the defaults. Returns 0 or -ENOMEM. Free with pd_config_free. */
int pd_config_init(struct pd_config *c);
/* Frees the strings of @c (not @c). Accepts a zeroed or half-built config. */
void pd_config_free(struct pd_config *c);

/*
 * Sets one option by its long name. @where names the source for messages
 * ("--detail", "/etc/ptescope/ptescoped.conf:12"). Returns 0, -EINVAL with
 * a message in @err, -ENOENT for an unknown key, -ENOMEM.
 */
int pd_config_set(struct pd_config *c, const char *key, const char *value, const char *where,
		  char *err, size_t errlen);

/* Reads the config file at @path into @c. 0 or -errno with a message. */
int pd_config_read_file(struct pd_config *c, const char *path, char *err, size_t errlen);

/*
 * Builds @c from defaults, the --config file and the command line. Returns
 * 0; 1 when --help or --version was printed (exit 0); -EINVAL with a message
 * (exit 2); -errno for an unreadable config file.
 */
int pd_config_load(struct pd_config *c, int argc, char **argv, char *err, size_t errlen);

const char *pd_capture_mode_name(enum pd_capture_mode m);
const char *pd_detail_name(enum pd_detail d);

#endif
