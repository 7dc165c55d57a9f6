/* SPDX-License-Identifier: MIT */
/*
 * Configuration parsing and validation (see config.h): one table of keys
 * (name, type, field offset, range, help), one parser per type, used for the
 * command line, the config file and --help alike. The command line is
 * parsed by hand, not getopt, so that SIGHUP can parse it again from the
 * saved argv with no hidden state. Sized for a few dozen options and a
 * config file of a few hundred lines (longer lines are refused).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h" /* the retention and size limits, shared with the CLI */

#define DEFAULT_DB "/var/lib/ptescope/ptescope.db"
#define DEFAULT_LISTEN "127.0.0.1:9466"
#define DEFAULT_STATE "/var/lib/ptescope/tracefs-state"
#define DEFAULT_INSTANCE "ptescoped"
#define DEFAULT_LOCK_DIR "/run/ptescope"

static const char *const mode_names[] = {"auto", "graph", "syscall", "off"};
static const char *const detail_names[] = {"fork", "section", "pte"};

const char *pd_capture_mode_name(enum pd_capture_mode m)
{
	return (unsigned)m < 4 ? mode_names[m] : "?";
}

const char *pd_detail_name(enum pd_detail d)
{
	return (unsigned)d < 3 ? detail_names[d] : "?";
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int pd_config_init(struct pd_config *c)
{
	*c = (struct pd_config){.capture = PD_CAPTURE_AUTO,
				.detail = PD_DETAIL_FORK,
				.preemptions = true,
				.parent_mem = true,
				.fork_cgroup = true,
				.metrics_cgroup_max = 20,
				.poll_ms = 1000,
				.watermark_pct = 25,
				.buffer_total_mb = 256,
				.log_level = PD_LOG_INFO,
				.max_upload_mb = 256,
				.spool_max_mb = 1024,
				.spool_max_files = 64,
				.investigation_max_s = 600,
				.auto_investigate_s = 30,
				.investigation_budget = 0.05,
				.investigation_cooldown_s = 300};
	if (set_str(&c->db_path, DEFAULT_DB) || set_str(&c->listen, DEFAULT_LISTEN) ||
	    set_str(&c->state_file, DEFAULT_STATE) || set_str(&c->instance, DEFAULT_INSTANCE) ||
	    set_str(&c->lock_dir, DEFAULT_LOCK_DIR)) {
		pd_config_free(c);
		return -ENOMEM;
	}
	return 0;
}

void pd_config_free(struct pd_config *c)
{
	if (!c)
		return;
	free(c->config_path);
	free(c->db_path);
	free(c->listen);
	for (size_t i = 0; i < c->nr_replay; i++)
		free(c->replay[i]);
	free(c->instance);
	free(c->state_file);
	free(c->lock_dir);
	free(c->tracefs);
	free(c->kernel_btf);
	free(c->web_root);
	free(c->token_file);
	free(c->comm_allow);
	free(c->allowed_hosts);
	memset(c, 0, sizeof(*c));
}

static int parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-' || *v == '+')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

static int parse_double(const char *v, double min, double max, double *out)
{
	char *end;
	double x;

	if (!*v || *v == '+' || !strchr("-.0123456789", *v))
		return -EINVAL;
	errno = 0;
	x = strtod(v, &end);
	if (errno || *end || !(x >= min && x <= max))
		return -EINVAL;
	*out = x;
	return 0;
}

static bool valid_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (!colon || colon == v || colon - v > 255)
		return false;
	/* "[::1]:9466" for IPv6 */
	if (v[0] == '[' && colon[-1] != ']')
		return false;
	return !parse_u64(colon + 1, 0, 65535, &port);
}

static bool valid_instance(const char *v)
{
	size_t n = strlen(v);

	if (!n || n > 64 || !strcmp(v, ".") || !strcmp(v, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(v[i] >= 'a' && v[i] <= 'z') && !(v[i] >= 'A' && v[i] <= 'Z') &&
		    !(v[i] >= '0' && v[i] <= '9') && v[i] != '_' && v[i] != '-' && v[i] != '.')
			return false;
	return true;
}

static bool valid_comm_list(const char *v)
{
	size_t items = 1, len = 0;

	for (const char *p = v; *p; p++) {
		if (*p == ',') {
			if (!len)
				return false;
			items++;
			len = 0;
		} else if (++len > 15 || *p < 0x21 || *p > 0x7e) {
			return false;
		}
	}
	return len && items <= 64;
}

/*
 * Why the allow-list @v would make two series of one name, or "" when it
 * would not: "other" is the label of every comm not on it, and a name given
 * twice would be exported twice (Prometheus keeps one sample and drops the
 * other). @why must hold 64 bytes.
 */
static const char *comm_list_clash(const char *v, char *why)
{
	why[0] = '\0';
	for (const char *p = v; *p; p += *p == ',') {
		size_t len = strcspn(p, ",");

		if (len == 5 && !strncmp(p, "other", 5)) {
			snprintf(why, 64, "'other' is the label of every comm not listed");
			return why;
		}
		for (const char *q = p + len; *q;) {
			size_t l2;

			q += *q == ',';
			l2 = strcspn(q, ",");
			if (l2 == len && !strncmp(p, q, len)) {
				snprintf(why, 64, "'%.*s' is listed twice", (int)len, p);
				return why;
			}
			q += l2;
		}
		p += len;
	}
	return why;
}

/* Host names (or address literals) as a Host header carries them, without
 * port or final dot: at most 16, each 1-253 of A-Z a-z 0-9 . - : [ ]. */
static bool valid_host_list(const char *v)
{
	size_t items = 0;

	for (const char *p = v;; p++) {
		size_t len = strcspn(p, ",");

		if (!len || len > 253 || p[len - 1] == '.' || ++items > 16)
			return false;
		for (size_t i = 0; i < len; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]",
				    p[i]))
				return false;
		p += len;
		if (!*p)
			return true;
	}
}

/* ------------------------------------------------------------------ table */

static const char *const bool_names[] = {"no", "yes", NULL};
static const char *const capture_names[] = {"auto", "graph", "syscall", "off", NULL};
static const char *const detail_names_z[] = {"fork", "section", "pte", NULL};
static const char *const sync_names[] = {"normal", "full", NULL};
static const char *const hooks_names[] = {"auto", "kprobe", "graph", NULL};
static const char *const pass_probe_names[] = {"auto", "off", "calls", NULL};
static const char *const sched_names[] = {"batch", "idle", NULL};
static const char *const cgroup_label_names[] = {"none", "unit", "container", NULL};

_Static_assert(sizeof(enum pd_capture_mode) == sizeof(int) && sizeof(enum pd_detail) == sizeof(int) &&
		   sizeof(enum pd_fork_hooks) == sizeof(int) &&
		   sizeof(enum pd_pass_probes) == sizeof(int) &&
		   sizeof(enum pd_sched) == sizeof(int),
	       "PD_CFG_ENUM fields are stored as int");

#define OFF(f) offsetof(struct pd_config, f)
#define STR(k, t, f, a, h) {k, t, OFF(f), 0, 0, NULL, a, h}
#define NUM(k, t, f, lo, hi, h) {k, t, OFF(f), lo, hi, NULL, "N", h}
#define ENUM(k, f, names, a, h) {k, PD_CFG_ENUM, OFF(f), 0, 0, names, a, h}
#define FLAG(k, f, h) {k, PD_CFG_BOOL, OFF(f), 0, 0, bool_names, NULL, h}

static const struct pd_config_key keys[] = {
	STR("db", PD_CFG_STRING, db_path, "FILE", "SQLite database (default " DEFAULT_DB ")"),
	STR("listen", PD_CFG_LISTEN, listen, "ADDR:PORT",
	    "HTTP listener (default " DEFAULT_LISTEN ")"),
	ENUM("capture", capture, capture_names, "MODE", "auto|graph|syscall|off (default auto)"),
	ENUM("detail", detail, detail_names_z, "LEVEL",
	     "graph mode, always on: fork|section|pte (default fork)"),
	ENUM("fork-hooks", fork_hooks, hooks_names, "HOOKS",
	     "fork detail hooks the fork path with kprobe events (kprobe) or function_graph "
	     "(graph); auto: kprobes where the kernel has them (default auto)"),
	ENUM("pass-probes", pass_probes, pass_probe_names, "MODE",
	     "fork detail by kprobes: also two probes inside copy_page_range that give every "
	     "copy_pte_range pass, its PTEs, lock hold and lock break (auto: where the kernel's "
	     "code is understood, read at start and cached by build id; calls: on the call "
	     "instructions themselves, never jump-optimized, to compare; off) (default auto)"),
	ENUM("sched", sched, sched_names, "POLICY",
	     "the daemon's CPU policy: batch (SCHED_BATCH: it never preempts a running task "
	     "when it wakes) or idle (SCHED_IDLE, its threads yielding every 200 us of work: "
	     "it runs on CPU time no other task wants, and a small share, so that its work "
	     "waits for the gaps between forks) (default batch)"),
	STR("replay", PD_CFG_APPEND, replay, "FILE",
	    "replay a trace file into the database (repeatable)"),
	FLAG("exit-after-replay", exit_after_replay, "with --capture off: exit when the replays are done"),
	NUM("slow-fork-us", PD_CFG_U64, slow_fork_us, 0, 3600000000.0,
	    "keep VMA/pass detail only for forks slower than N us"),
	FLAG("force", force, "take over a top-level tracefs another tool set up"),
	FLAG("preemptions", preemptions,
	     "record the forking task's preemptions while copying page tables (default yes; "
	     "from its scheduler counters, or sched_switch where they cannot be read)"),
	FLAG("parent-mem", parent_mem,
	     "read each live fork's parent memory from /proc (RSS, page tables, VMAs, THP; at "
	     "most 50 readings/s; default yes; read at start; what the capture's probe reads "
	     "at the fork is stored either way)"),
	STR("instance", PD_CFG_INSTANCE, instance, "NAME",
	    "tracefs instance name (default " DEFAULT_INSTANCE ")"),
	STR("state-file", PD_CFG_ABSPATH, state_file, "FILE",
	    "saved tracefs state (default " DEFAULT_STATE ")"),
	STR("lock-dir", PD_CFG_ABSPATH, lock_dir, "DIR",
	    "host-wide locks of tracefs's top level and instances, shared by every ptescoped "
	    "on the host (default " DEFAULT_LOCK_DIR ")"),
	STR("tracefs", PD_CFG_ABSPATH, tracefs, "DIR", "tracefs mount (default: found automatically)"),
	STR("kernel-btf", PD_CFG_ABSPATH, kernel_btf, "FILE",
	    "the kernel's BTF, where the default capture finds the task's preemption counters "
	    "(default /sys/kernel/btf/vmlinux; unreadable: preemptions from sched_switch)"),
	NUM("buffer-kb", PD_CFG_UINT, buffer_kb, 0, 1048576,
	    "ring buffer per CPU in KiB (0, the default: by mode and detail)"),
	NUM("buffer-total-mb", PD_CFG_UINT, buffer_total_mb, 0, 1048576,
	    "every CPU's ring buffer together at most, MiB: the kernel's memory, outside the "
	    "unit's MemoryMax= (default 256; 0: no cap; at least 128 KiB per CPU)"),
	NUM("poll-ms", PD_CFG_UINT, poll_ms, 10, 5000,
	    "the longest a trace event waits before the buffers are read (default 1000; "
	    "sooner when one fills to the watermark)"),
	NUM("buffer-watermark", PD_CFG_UINT, watermark_pct, 0, 100,
	    "read the buffers as soon as one of them is this many percent full (the kernel's "
	    "buffer_percent; default 25; 0: only every --poll-ms)"),
	{"log-level", PD_CFG_LOGLEVEL, OFF(log_level), 0, 0, NULL, "LEVEL",
	 "error|warning|notice|info|debug (default info)"},
	STR("web-root", PD_CFG_STRING, web_root, "DIR", "dashboard files to serve"),
	STR("token-file", PD_CFG_STRING, token_file, "FILE",
	    "bearer token for uploads and investigations"),
	NUM("max-upload-mb", PD_CFG_U64, max_upload_mb, 1, 65536,
	    "largest replay upload (default 256)"),
	NUM("spool-max-mb", PD_CFG_U64, spool_max_mb, 1, 1048576,
	    "disk the upload spool may take: uploads waiting for their replay and arriving "
	    "(default 1024)"),
	NUM("spool-max-files", PD_CFG_UINT, spool_max_files, 1, 64,
	    "uploads waiting for their replay and arriving at once (default 64)"),
	NUM("retention-days", PD_CFG_INT, retention_days, 0, STORE_RETENTION_DAYS_MAX,
	    "delete forks older than N days (0: keep)"),
	NUM("max-db-mb", PD_CFG_I64, max_db_mb, 0, (double)STORE_MAX_DB_MB_MAX,
	    "keep the database under N MiB (0: no limit)"),
	ENUM("db-sync", db_sync_full, sync_names, "normal|full",
	     "survive process crashes (normal) or power loss (full)"),
	STR("comm-allow", PD_CFG_COMMS, comm_allow, "A,B,...",
	    "comm label values allowed on metrics (not 'other', each once)"),
	FLAG("fork-cgroup", fork_cgroup,
	     "read each live fork's parent cgroup from /proc (its systemd unit or container; "
	     "default yes)"),
	ENUM("metrics-cgroup-label", metrics_cgroup_label, cgroup_label_names, "LABEL",
	     "also count forks and their duration by the parent's systemd unit (unit) or "
	     "container id (container) on /metrics (default none)"),
	NUM("metrics-cgroup-max", PD_CFG_UINT, metrics_cgroup_max, 1, 1000,
	    "label values of --metrics-cgroup-label before the rest is \"other\" (default 20)"),
	STR("allowed-hosts", PD_CFG_HOSTS, allowed_hosts, "NAME,...",
	    "Host names the HTTP API answers to besides loopback and the listen address "
	    "(a reverse proxy's); others get 421"),
	NUM("investigation-max-s", PD_CFG_UINT, investigation_max_s, 1, 86400,
	    "longest investigation, seconds (default 600)"),
	NUM("auto-investigate-us", PD_CFG_U64, auto_investigate_us, 0, 3600000000.0,
	    "after a fork slower than N us, investigate its pid (0, the default: off)"),
	NUM("auto-investigate-s", PD_CFG_UINT, auto_investigate_s, 1, 86400,
	    "how long an automatic investigation lasts (default 30)"),
	NUM("investigation-budget", PD_CFG_DOUBLE, investigation_budget, 0, 1,
	    "share of the last hour automatic ones may spend deeper (default 0.05)"),
	NUM("investigation-cooldown-s", PD_CFG_UINT, investigation_cooldown_s, 0, 86400,
	    "pause after an investigation before an automatic one (default 300)"),
};

#undef OFF
#undef STR
#undef NUM
#undef ENUM
#undef FLAG

const struct pd_config_key *pd_config_keys(size_t *nr)
{
	*nr = sizeof(keys) / sizeof(keys[0]);
	return keys;
}

static const struct pd_config_key *find_key(const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].key, key))
			return &keys[i];
	return NULL;
}

static int parse_enum(const char *v, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

#define BAD(fmt, ...)                                                                              \
	do {                                                                                       \
		snprintf(err, errlen, "%s: " fmt, where, ##__VA_ARGS__);                           \
		return -EINVAL;                                                                    \
	} while (0)

/* A number in the key's range, stored in the field's own width. */
static int set_number(struct pd_config *c, const struct pd_config_key *k, const char *v,
		      const char *where, char *err, size_t errlen)
{
	void *field = (char *)c + k->offset;
	uint64_t u;
	double x;

	if (k->type == PD_CFG_DOUBLE) {
		if (parse_double(v, k->min, k->max, &x))
			BAD("'%s' is not a number from %g to %g", v, k->min, k->max);
		*(double *)field = x;
		return 0;
	}
	if (parse_u64(v, (uint64_t)k->min, (uint64_t)k->max, &u))
		BAD("'%s' is not an integer from %.0f to %.0f", v, k->min, k->max);
	if (k->type == PD_CFG_UINT)
		*(unsigned *)field = (unsigned)u;
	else if (k->type == PD_CFG_U64)
		*(uint64_t *)field = u;
	else if (k->type == PD_CFG_INT)
		*(int *)field = (int)u;
	else
		*(int64_t *)field = (int64_t)u;
	return 0;
}

/* A string, checked by the key's type. */
static int set_string(struct pd_config *c, const struct pd_config_key *k, const char *v,
		      const char *where, char *err, size_t errlen)
{
	char **field = (char **)((char *)c + k->offset);

	switch (k->type) {
	case PD_CFG_STRING:
		if (!*v)
			BAD("empty value");
		break;
	case PD_CFG_ABSPATH:
		if (v[0] != '/')
			BAD("'%s' is not an absolute path", v);
		break;
	case PD_CFG_LISTEN:
		if (!valid_listen(v))
			BAD("'%s' is not ADDR:PORT (e.g. 127.0.0.1:9466)", v);
		break;
	case PD_CFG_INSTANCE:
		if (!valid_instance(v))
			BAD("'%s' is not an instance name (1-64 of A-Z a-z 0-9 _ - .)", v);
		break;
	case PD_CFG_COMMS: {
		char why[64];

		if (!valid_comm_list(v))
			BAD("'%s' is not a comma-separated list of up to 64 comms", v);
		if (comm_list_clash(v, why)[0])
			BAD("'%.128s' would make duplicate metric series: %s", v, why);
		break;
	}
	case PD_CFG_HOSTS:
		if (!valid_host_list(v))
			BAD("'%.64s' is not a comma-separated list of up to 16 host names "
			    "(A-Z a-z 0-9 . - and address literals, no port, no final dot)",
			    v);
		break;
	case PD_CFG_APPEND:
		if (!*v)
			BAD("empty path");
		if (c->nr_replay >= PD_MAX_REPLAYS)
			BAD("more than %d replay files", PD_MAX_REPLAYS);
		if (!(c->replay[c->nr_replay] = strdup(v)))
			return -ENOMEM;
		c->nr_replay++;
		return 0;
	default:
		BAD("internal: not a string key");
	}
	return set_str(field, v);
}

static int set_enum(struct pd_config *c, const struct pd_config_key *k, const char *v,
		    const char *where, char *err, size_t errlen)
{
	void *field = (char *)c + k->offset;
	char list[128] = "";
	int i;

	if (k->type == PD_CFG_LOGLEVEL) {
		if (pd_log_parse_level(v, (enum pd_log_level *)field))
			BAD("'%s' is not one of error, warning, notice, info, debug", v);
		return 0;
	}
	if (k->type == PD_CFG_BOOL) {
		if (!v || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
			*(bool *)field = false;
		else
			BAD("'%s' is not yes or no", v);
		return 0;
	}
	if ((i = parse_enum(v, k->names)) >= 0) {
		*(int *)field = i;
		return 0;
	}
	for (int j = 0; k->names[j]; j++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", j ? ", " : "",
			 k->names[j]);
	BAD("'%s' is not one of %s", v, list);
}

int pd_config_set(struct pd_config *c, const char *key, const char *value, const char *where,
		  char *err, size_t errlen)
{
	const struct pd_config_key *k = find_key(key);

	if (!k) {
		snprintf(err, errlen, "%s: unknown option '%.64s'", where, key);
		return -ENOENT;
	}
	if (!value && k->type != PD_CFG_BOOL)
		BAD("needs a value");
	switch (k->type) {
	case PD_CFG_UINT:
	case PD_CFG_U64:
	case PD_CFG_INT:
	case PD_CFG_I64:
	case PD_CFG_DOUBLE:
		return set_number(c, k, value, where, err, errlen);
	case PD_CFG_BOOL:
	case PD_CFG_ENUM:
	case PD_CFG_LOGLEVEL:
		return set_enum(c, k, value, where, err, errlen);
	default:
		return set_string(c, k, value, where, err, errlen);
	}
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int pd_config_read_file(struct pd_config *c, const char *path, char *err, size_t errlen)
{
	char line[4096], where[PATH_MAX + 32];
	unsigned lineno = 0;
	int ret = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "config %s: %s", path, strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k, *v, *eq;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s: line longer than %zu bytes", where, sizeof(line) - 2);
			ret = -EINVAL;
			break;
		}
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(err, errlen, "%s: expected 'key = value'", where);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		v = trim(eq + 1);
		k = trim(k);
		if (!strcmp(k, "config")) {
			snprintf(err, errlen, "%s: 'config' cannot be set in a config file", where);
			ret = -EINVAL;
			break;
		}
		{
			char w2[PATH_MAX + 300];

			snprintf(w2, sizeof(w2), "%s: %s", where, k);
			ret = pd_config_set(c, k, v, w2, err, errlen);
		}
		if (ret == -ENOENT)
			ret = -EINVAL;
		if (ret)
			break;
	}
	if (!ret && ferror(f)) {
		ret = -EIO;
		snprintf(err, errlen, "config %s: read error", path);
	}
	fclose(f);
	return ret;
}

static void print_usage(void)
{
	fputs("Usage: ptescoped [OPTION]...\n"
	      "Measures what fork() costs, live from ftrace, and serves it over HTTP.\n\n"
	      "  --config FILE         read options from FILE (\"key = value\" lines)\n"
	      "  --repair              undo what a ptescoped that died left in tracefs (its\n"
	      "                        state file, --state-file), then exit: 0 when nothing\n"
	      "                        is left, 1 when something could not be undone\n",
	      stdout);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char opt[64];

		snprintf(opt, sizeof(opt), "--%s%s%s", keys[i].key, keys[i].arg ? " " : "",
			 keys[i].arg ? keys[i].arg : "");
		if (strlen(opt) > 21)
			printf("  %s\n  %-21s %s\n", opt, "", keys[i].help);
		else
			printf("  %-21s %s\n", opt, keys[i].help);
	}
	fputs("  -h, --help            show this help\n"
	      "  -V, --version         show the version\n",
	      stdout);
}

int pd_config_load(struct pd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *config = NULL;
	bool repair = false;
	int ret;

	/* first pass: --help, --version, --config */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			print_usage();
			return 1;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("ptescoped %s\n", PTESCOPE_VERSION);
			return 1;
		}
		if (!strcmp(argv[i], "--repair"))
			repair = true;
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if ((ret = pd_config_init(c))) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	c->repair = repair;
	if (config) {
		if ((ret = set_str(&c->config_path, config)))
			return ret;
		if ((ret = pd_config_read_file(c, config, err, errlen)))
			return ret;
	}
	for (int i = 1; i < argc; i++) {
		char key[64], where[96];
		const char *a = argv[i], *eq, *val = NULL;
		size_t klen;

		if (strncmp(a, "--", 2) || !a[2]) {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
			return -EINVAL;
		}
		if (!strcmp(a, "--repair"))
			continue;
		a += 2;
		eq = strchr(a, '=');
		klen = eq ? (size_t)(eq - a) : strlen(a);
		if (klen >= sizeof(key)) {
			snprintf(err, errlen, "unknown option '--%.20s...'", a);
			return -EINVAL;
		}
		memcpy(key, a, klen);
		key[klen] = 0;
		snprintf(where, sizeof(where), "--%s", key);
		if (eq) {
			val = eq + 1;
		} else if (!find_key(key) || find_key(key)->type != PD_CFG_BOOL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", where);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (!strcmp(key, "config"))
			continue;
		ret = pd_config_set(c, key, val, where, err, errlen);
		if (ret == -ENOENT) {
			snprintf(err, errlen, "unknown option '--%.64s' (see --help)", key);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	if (c->exit_after_replay && c->capture != PD_CAPTURE_OFF) {
		snprintf(err, errlen, "--exit-after-replay needs --capture off");
		return -EINVAL;
	}
	return 0;
}
