/* SPDX-License-Identifier: MIT */
/*
 * Configuration parsing and validation (see config.h). The command line is
 * parsed by hand, not getopt, so that SIGHUP can parse it again from the
 * saved argv with no hidden state. Sized for a few dozen options and a
 * config file of a few hundred lines (longer lines are refused).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DB "/var/lib/ptescope/ptescope.db"
#define DEFAULT_LISTEN "127.0.0.1:9466"
#define DEFAULT_STATE "/var/lib/ptescope/tracefs-state"
#define DEFAULT_INSTANCE "ptescoped"

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
				.poll_ms = 100,
				.log_level = PD_LOG_INFO,
				.max_upload_mb = 256};
	if (set_str(&c->db_path, DEFAULT_DB) || set_str(&c->listen, DEFAULT_LISTEN) ||
	    set_str(&c->state_file, DEFAULT_STATE) || set_str(&c->instance, DEFAULT_INSTANCE)) {
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
	free(c->tracefs);
	free(c->web_root);
	free(c->token_file);
	free(c->comm_allow);
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

static int parse_enum(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
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

#define BAD(fmt, ...)                                                                              \
	do {                                                                                       \
		snprintf(err, errlen, "%s: " fmt, where, ##__VA_ARGS__);                           \
		return -EINVAL;                                                                    \
	} while (0)

int pd_config_set(struct pd_config *c, const char *key, const char *value, const char *where,
		  char *err, size_t errlen)
{
	uint64_t u;
	int i;

	if (!strcmp(key, "force") || !strcmp(key, "exit-after-replay")) {
		bool on;

		if (!value || !strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
			on = true;
		else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
			on = false;
		else
			BAD("'%s' is not yes or no", value);
		if (key[0] == 'f')
			c->force = on;
		else
			c->exit_after_replay = on;
		return 0;
	}
	if (!value)
		BAD("needs a value");
	if (!strcmp(key, "db")) {
		if (!*value)
			BAD("empty path");
		return set_str(&c->db_path, value);
	} else if (!strcmp(key, "listen")) {
		if (!valid_listen(value))
			BAD("'%s' is not ADDR:PORT (e.g. 127.0.0.1:9466)", value);
		return set_str(&c->listen, value);
	} else if (!strcmp(key, "capture")) {
		if ((i = parse_enum(value, mode_names, 4)) < 0)
			BAD("'%s' is not one of auto, graph, syscall, off", value);
		c->capture = (enum pd_capture_mode)i;
	} else if (!strcmp(key, "detail")) {
		if ((i = parse_enum(value, detail_names, 3)) < 0)
			BAD("'%s' is not one of fork, section, pte", value);
		c->detail = (enum pd_detail)i;
	} else if (!strcmp(key, "replay")) {
		if (!*value)
			BAD("empty path");
		if (c->nr_replay >= PD_MAX_REPLAYS)
			BAD("more than %d replay files", PD_MAX_REPLAYS);
		if (!(c->replay[c->nr_replay] = strdup(value)))
			return -ENOMEM;
		c->nr_replay++;
	} else if (!strcmp(key, "instance")) {
		if (!valid_instance(value))
			BAD("'%s' is not an instance name (1-64 of A-Z a-z 0-9 _ - .)", value);
		return set_str(&c->instance, value);
	} else if (!strcmp(key, "state-file")) {
		if (value[0] != '/')
			BAD("'%s' is not an absolute path", value);
		return set_str(&c->state_file, value);
	} else if (!strcmp(key, "tracefs")) {
		if (value[0] != '/')
			BAD("'%s' is not an absolute path", value);
		return set_str(&c->tracefs, value);
	} else if (!strcmp(key, "buffer-kb")) {
		if (parse_u64(value, 0, 1u << 20, &u))
			BAD("'%s' is not a size in KiB per CPU (0 = automatic, at most 1048576)", value);
		c->buffer_kb = (unsigned)u;
	} else if (!strcmp(key, "poll-ms")) {
		if (parse_u64(value, 10, 5000, &u))
			BAD("'%s' is not a poll interval in ms (10..5000)", value);
		c->poll_ms = (unsigned)u;
	} else if (!strcmp(key, "slow-fork-us")) {
		if (parse_u64(value, 0, 3600000000ull, &u))
			BAD("'%s' is not a threshold in microseconds", value);
		c->slow_fork_us = u;
	} else if (!strcmp(key, "log-level")) {
		if (pd_log_parse_level(value, &c->log_level))
			BAD("'%s' is not one of error, warning, notice, info, debug", value);
	} else if (!strcmp(key, "web-root")) {
		return set_str(&c->web_root, value);
	} else if (!strcmp(key, "token-file")) {
		return set_str(&c->token_file, value);
	} else if (!strcmp(key, "max-upload-mb")) {
		if (parse_u64(value, 1, 65536, &u))
			BAD("'%s' is not a size in MiB (1..65536)", value);
		c->max_upload_mb = u;
	} else if (!strcmp(key, "retention-days")) {
		if (parse_u64(value, 0, 36500, &u))
			BAD("'%s' is not a number of days (0..36500)", value);
		c->retention_days = (int)u;
	} else if (!strcmp(key, "max-db-mb")) {
		if (parse_u64(value, 0, 1ull << 30, &u))
			BAD("'%s' is not a size in MiB", value);
		c->max_db_mb = (int64_t)u;
	} else if (!strcmp(key, "db-sync")) {
		if (strcmp(value, "normal") && strcmp(value, "full"))
			BAD("'%s' is not normal or full", value);
		c->db_sync_full = !strcmp(value, "full");
	} else if (!strcmp(key, "comm-allow")) {
		if (!valid_comm_list(value))
			BAD("'%s' is not a comma-separated list of up to 64 comms", value);
		return set_str(&c->comm_allow, value);
	} else {
		snprintf(err, errlen, "%s: unknown option", where);
		return -ENOENT;
	}
	return 0;
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

static const char usage[] =
	"Usage: ptescoped [OPTION]...\n"
	"Measures what fork() costs, live from ftrace, and serves it over HTTP.\n"
	"\n"
	"  --config FILE         read options from FILE (\"key = value\" lines)\n"
	"  --db FILE             SQLite database (default " DEFAULT_DB ")\n"
	"  --listen ADDR:PORT    HTTP listener (default " DEFAULT_LISTEN ")\n"
	"  --capture MODE        auto|graph|syscall|off (default auto)\n"
	"  --detail LEVEL        graph mode: fork|section|pte (default section)\n"
	"  --replay FILE         replay a trace file into the database (repeatable)\n"
	"  --exit-after-replay   with --capture off: exit when the replays are done\n"
	"  --slow-fork-us N      keep VMA/pass detail only for forks slower than N us\n"
	"  --force               take over a top-level tracefs another tool set up\n"
	"  --instance NAME       tracefs instance name (default " DEFAULT_INSTANCE ")\n"
	"  --state-file FILE     saved tracefs state (default " DEFAULT_STATE ")\n"
	"  --tracefs DIR         tracefs mount (default: found automatically)\n"
	"  --buffer-kb N         ring buffer per CPU in KiB (default: by mode and detail)\n"
	"  --poll-ms N           how often the buffers are read (default 100)\n"
	"  --log-level LEVEL     error|warning|notice|info|debug (default info)\n"
	"  --web-root DIR        dashboard files to serve\n"
	"  --token-file FILE     bearer token for POST /api/v1/replays\n"
	"  --max-upload-mb N     largest replay upload (default 256)\n"
	"  --retention-days N    delete forks older than N days (0: keep)\n"
	"  --max-db-mb N         keep the database under N MiB (0: no limit)\n"
	"  --db-sync normal|full survive process crashes (normal) or power loss (full)\n"
	"  --comm-allow A,B,...  comm label values allowed on metrics\n"
	"  -h, --help            show this help\n"
	"  -V, --version         show the version\n";

int pd_config_load(struct pd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *config = NULL;
	int ret;

	/* first pass: --help, --version, --config */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 1;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			printf("ptescoped %s\n", PTESCOPE_VERSION);
			return 1;
		}
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if ((ret = pd_config_init(c))) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
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
		} else if (strcmp(key, "force") && strcmp(key, "exit-after-replay")) {
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
			snprintf(err, errlen, "unknown option '--%s' (see --help)", key);
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
