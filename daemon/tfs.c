/* SPDX-License-Identifier: MIT */
/*
 * Save-before-change and restore of tracefs files, with a crash-surviving
 * state file (see tfs.h). Sized for the dozen files a capture mode touches:
 * at most MAX_SAVED saved values of at most MAX_VALUE bytes each (a larger
 * filter set by another tool is refused rather than half-saved).
 *
 * Restoring is ordered by what a write does to the kernel's hooks, never by
 * when the file was saved (put_back_all): first everything that narrows
 * (tracing off, the function probes we added to set_ftrace_filter, our
 * events off, tracer options while our tracer still owns them, the tracer to
 * nop), then what is neutral once no tracer runs
 * (filters, clock, buffer size), and last what widens again to the state
 * we found (the saved tracer, events that were on, tracing on). Clearing a
 * filter while function_graph is the tracer hooks every function of the
 * kernel at once: that soft-locked 6.1 and oopsed 6.12 (kernel-notes.md).
 * Function probes ("func:enable_event:sys:event") survive a truncation of
 * set_ftrace_filter: only "!func:cmd:args" removes one; and removing an
 * enable_event probe that fired last leaves its event enabled, so the event
 * is written off after its probes are gone. Our kprobe events (group
 * PD_KPROBE_GROUP) are removed one by one once they are off; kprobe_events
 * is never truncated.
 *
 * State file format (text, rewritten whole through a temporary file and
 * rename, fsync'ed, before each change it describes):
 *     ptescoped-tracefs-state 1
 *     boot BOOT_ID
 *     pid PID
 *     instance NAME            (while we have an instance)
 *     file REL HEX-OF-VALUE    (one per saved file, oldest first)
 */
#include "tfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAVED 32
#define MAX_VALUE 65536
#define STATE_MAGIC "ptescoped-tracefs-state 1"

struct saved {
	char rel[128];
	char *value; /* normalised: what to write back */
};

struct pd_tfs {
	pd_tfs_observer_fn observe; /* tests: sees every write */
	void *observe_ctx;
	char dir[PATH_MAX];
	char state[PATH_MAX];
	char instance[80]; /* "" at the top level */
	char boot_id[64];
	struct saved saved[MAX_SAVED];
	size_t nr_saved;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void read_boot_id(char *buf, size_t len)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

int pd_tfs_new(const char *tracing_dir, const char *state_file, struct pd_tfs **out)
{
	struct pd_tfs *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	snprintf(t->dir, sizeof(t->dir), "%s", tracing_dir);
	snprintf(t->state, sizeof(t->state), "%s", state_file);
	read_boot_id(t->boot_id, sizeof(t->boot_id));
	*out = t;
	return 0;
}

void pd_tfs_free(struct pd_tfs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr_saved; i++)
		free(t->saved[i].value);
	free(t);
}

const char *pd_tfs_instance(const struct pd_tfs *t)
{
	return t->instance[0] ? t->instance : NULL;
}

const char *pd_tfs_dir(const struct pd_tfs *t)
{
	return t->dir;
}

bool pd_tfs_dirty(const struct pd_tfs *t)
{
	return t->nr_saved || t->instance[0];
}

static int top_path(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", t->dir, rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Files of the whole tracefs, not of an instance: probe definitions and
 * their counters, and the log of their errors. */
static bool is_global(const char *rel)
{
	return !strcmp(rel, "kprobe_events") || !strcmp(rel, "kprobe_profile") ||
	       !strcmp(rel, "dynamic_events") || !strcmp(rel, "error_log");
}

int pd_tfs_path(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	int n;

	if (!t->instance[0] || is_global(rel))
		return top_path(t, rel, buf, len);
	n = snprintf(buf, len, "%s/instances/%s/%s", t->dir, t->instance, rel);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool pd_tfs_exists(const struct pd_tfs *t, const char *rel)
{
	char p[PATH_MAX];

	return !pd_tfs_path(t, rel, p, sizeof(p)) && !access(p, F_OK);
}

static int read_path(const char *p, char *buf, size_t len)
{
	size_t got = 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (got >= len - 1) {
			char c;

			/* full: fine only if the file ends here */
			n = read(fd, &c, 1);
			ret = n > 0 ? -EFBIG : 0;
			break;
		}
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return ret ? ret : (int)got;
}

int pd_tfs_read(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	char p[PATH_MAX];
	int ret = pd_tfs_path(t, rel, p, sizeof(p));

	return ret ? ret : read_path(p, buf, len);
}

static int write_path(const char *p, const char *value, bool append)
{
	size_t len = strlen(value);
	int fd = open(p, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)), ret = 0;

	if (fd < 0)
		return -errno;
	if (len) {
		ssize_t n = write(fd, value, len);

		if (n < 0)
			ret = -errno;
		else if ((size_t)n != len)
			ret = -EIO;
	}
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Every write to tracefs goes through here, so an observer sees them all, in order. */
static int tfs_write(const struct pd_tfs *t, const char *p, const char *value, bool append)
{
	uint64_t t0 = mono_ns();
	int ret = write_path(p, value, append);

	if (t->observe)
		t->observe(t->observe_ctx, p + strlen(t->dir) + 1, value, append, ret,
			   mono_ns() - t0);
	return ret;
}

void pd_tfs_set_observer(struct pd_tfs *t, pd_tfs_observer_fn fn, void *ctx)
{
	t->observe = fn;
	t->observe_ctx = ctx;
}

static bool is_list_file(const char *rel)
{
	const char *b = strrchr(rel, '/');

	b = b ? b + 1 : rel;
	return !strcmp(b, "set_graph_function") || !strcmp(b, "set_ftrace_filter") ||
	       !strcmp(b, "set_ftrace_notrace") || !strcmp(b, "set_graph_notrace") ||
	       !strcmp(b, "set_ftrace_pid") || !strcmp(b, "set_event_pid") ||
	       !strcmp(b, "kprobe_events");
}

/* What to write back to restore @rel, from what reading it gave. */
static int normalise(const char *rel, const char *raw, char **out)
{
	const char *b = strrchr(rel, '/');
	char *v;

	b = b ? b + 1 : rel;
	if (!strcmp(b, "trace_clock")) {
		const char *o = strchr(raw, '['), *c = o ? strchr(o, ']') : NULL;

		if (!o || !c)
			return -EINVAL;
		v = strndup(o + 1, (size_t)(c - o - 1));
	} else if (!strcmp(b, "buffer_size_kb")) {
		/* "7 (expanded: 1408)": not allocated yet; any tracer use expands it,
		 * so the size to give back is the expanded one */
		const char *x = strstr(raw, "(expanded: ");

		if (x)
			raw = x + 11;
		v = strndup(raw, strspn(raw, "0123456789"));
		if (v && !*v) {
			free(v);
			return -EINVAL;
		}
	} else if (is_list_file(rel)) {
		/* keep the lines that are not comments ("#### all functions enabled ####")
		 * nor the pid files' "no pid" */
		size_t n = 0;
		const char *p = raw;

		v = malloc(strlen(raw) + 1);
		if (!v)
			return -ENOMEM;
		while (*p) {
			size_t l = strcspn(p, "\n");

			if (l && p[0] != '#' && !(l == 6 && !strncmp(p, "no pid", 6))) {
				memcpy(v + n, p, l);
				n += l;
				v[n++] = '\n';
			}
			p += l + (p[l] == '\n');
		}
		v[n] = 0;
	} else if (!strcmp(b, "filter") && !strncmp(raw, "none", 4)) {
		v = strdup("0"); /* an event without a filter reads "none"; "0" clears one */
	} else if (!strcmp(b, "enable") && (raw[0] == '0' || raw[0] == '1') && raw[1] == '*') {
		/* "0*": soft mode, owned by a function probe or trigger, which
		 * goes with its owner; what can be written back is the digit */
		v = strndup(raw, 1);
	} else {
		size_t l = strlen(raw);

		while (l && (raw[l - 1] == '\n' || raw[l - 1] == ' '))
			l--;
		v = strndup(raw, l);
	}
	if (!v)
		return -ENOMEM;
	*out = v;
	return 0;
}

static void hex_put(FILE *f, const char *s)
{
	for (; *s; s++)
		fprintf(f, "%02x", (unsigned char)*s);
}

static int write_state(struct pd_tfs *t)
{
	char tmp[PATH_MAX + 8], dir[PATH_MAX], *slash;
	FILE *f;
	int fd, ret = 0;

	if (!pd_tfs_dirty(t)) {
		if (unlink(t->state) && errno != ENOENT)
			return -errno;
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s", t->state);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", t->state);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		return ret;
	}
	fprintf(f, "%s\nboot %s\npid %d\n", STATE_MAGIC, t->boot_id[0] ? t->boot_id : "-",
		(int)getpid());
	if (t->instance[0])
		fprintf(f, "instance %s\n", t->instance);
	for (size_t i = 0; i < t->nr_saved; i++) {
		fprintf(f, "file %s ", t->saved[i].rel);
		hex_put(f, t->saved[i].value);
		if (!t->saved[i].value[0])
			fputc('-', f);
		fputc('\n', f);
	}
	if (fflush(f) || fsync(fd))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, t->state))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

static int save(struct pd_tfs *t, const char *rel, char *err, size_t errlen)
{
	char p[PATH_MAX], *raw, *v = NULL;
	int n, ret;

	if ((t->instance[0] && !is_global(rel)) || !strcmp(rel, "trace"))
		return 0;
	for (size_t i = 0; i < t->nr_saved; i++)
		if (!strcmp(t->saved[i].rel, rel))
			return 0;
	if (t->nr_saved == MAX_SAVED || strlen(rel) >= sizeof(t->saved[0].rel)) {
		snprintf(err, errlen, "cannot save %s: too many files", rel);
		return -ENOSPC;
	}
	if ((ret = top_path(t, rel, p, sizeof(p))))
		return ret;
	raw = malloc(MAX_VALUE);
	if (!raw)
		return -ENOMEM;
	n = read_path(p, raw, MAX_VALUE);
	if (n < 0) {
		snprintf(err, errlen, "cannot save %s: %s", p,
			 n == -EFBIG ? "too large to save" : strerror(-n));
		free(raw);
		return n;
	}
	ret = normalise(rel, raw, &v);
	free(raw);
	if (ret) {
		snprintf(err, errlen, "cannot save %s: unexpected content", p);
		return ret;
	}
	snprintf(t->saved[t->nr_saved].rel, sizeof(t->saved[0].rel), "%s", rel);
	t->saved[t->nr_saved++].value = v;
	if ((ret = write_state(t))) {
		t->nr_saved--;
		free(v);
		snprintf(err, errlen, "cannot write the state file %s: %s", t->state,
			 strerror(-ret));
	}
	return ret;
}

static int change(struct pd_tfs *t, const char *rel, const char *value, bool append, char *err,
		  size_t errlen)
{
	char p[PATH_MAX];
	int ret;

	if ((ret = save(t, rel, err, errlen)))
		return ret;
	if ((ret = pd_tfs_path(t, rel, p, sizeof(p))))
		return ret;
	ret = tfs_write(t, p, value, append);
	if (ret)
		snprintf(err, errlen, "cannot write '%.*s' to %s: %s", (int)strcspn(value, "\n"),
			 value, p, strerror(-ret));
	return ret;
}

int pd_tfs_write(struct pd_tfs *t, const char *rel, const char *value, char *err, size_t errlen)
{
	return change(t, rel, value, false, err, errlen);
}

int pd_tfs_append(struct pd_tfs *t, const char *rel, const char *value, char *err, size_t errlen)
{
	return change(t, rel, value, true, err, errlen);
}

/*
 * A function probe of set_ftrace_filter ("copy_page_range:enable_event:
 * sched:sched_switch:unlimited", "f:traceoff:count=3"): its key, what follows
 * "!" to remove it (the line without its count), in @key. false for a name.
 */
static bool probe_key(const char *line, size_t l, char *key, size_t keylen)
{
	const char *c = memchr(line, ':', l), *last;

	if (!c || l >= keylen || line[0] == '!')
		return false;
	memcpy(key, line, l);
	key[l] = 0;
	last = strrchr(key, ':');
	if (last != key + (c - line) &&
	    (!strcmp(last + 1, "unlimited") || !strncmp(last + 1, "count=", 6) ||
	     (last[1] && strspn(last + 1, "0123456789") == strlen(last + 1))))
		*(char *)last = 0;
	return true;
}

/* Whether list @v has a probe with @key. */
static bool has_probe(const char *v, const char *key)
{
	char k[512];

	for (const char *s = v; *s;) {
		size_t l = strcspn(s, "\n");

		if (probe_key(s, l, k, sizeof(k)) && !strcmp(k, key))
			return true;
		s += l + (s[l] == '\n');
	}
	return false;
}

/*
 * Truncating set_ftrace_filter clears its names but not its function probes:
 * those not in @value are removed one by one ("!KEY"); those in it are left
 * as they are (writing one again would fail). In @now, what it read.
 */
static int drop_probes(const struct pd_tfs *t, const char *p, const char *value, char *now,
		       size_t len)
{
	char key[512], cmd[520];
	int ret = read_path(p, now, len);

	if (ret < 0) {
		now[0] = 0;
		return ret == -EFBIG ? 0 : ret;
	}
	ret = 0;
	for (const char *s = now; *s;) {
		size_t l = strcspn(s, "\n");

		if (probe_key(s, l, key, sizeof(key)) && !has_probe(value, key)) {
			int r;

			snprintf(cmd, sizeof(cmd), "!%s\n", key);
			r = tfs_write(t, p, cmd, true);
			if (r && !ret)
				ret = r;
		}
		s += l + (s[l] == '\n');
	}
	return ret;
}

/* Removes the function probes of set_ftrace_filter (@rel) that @value does not have. */
static int put_back_probes(const struct pd_tfs *t, const char *rel, const char *value)
{
	char p[PATH_MAX], *now;
	int ret;

	if ((ret = top_path(t, rel, p, sizeof(p))))
		return ret;
	if (!(now = malloc(MAX_VALUE)))
		return -ENOMEM;
	ret = drop_probes(t, p, value, now, MAX_VALUE);
	free(now);
	return ret;
}

/*
 * The GROUP/EVENT of kprobe_events line @line (@l bytes: "p:G/E sym",
 * "r512:G/E sym") in @key when its group is ours; false otherwise.
 */
static bool our_kprobe(const char *line, size_t l, char *key, size_t keylen)
{
	const char *c = memchr(line, ':', l), *sp;
	size_t g = strlen(PD_KPROBE_GROUP), n;

	if (!c || (line[0] != 'p' && line[0] != 'r'))
		return false;
	c++;
	sp = memchr(c, ' ', l - (size_t)(c - line));
	n = sp ? (size_t)(sp - c) : l - (size_t)(c - line);
	if (n <= g + 1 || n >= keylen || strncmp(c, PD_KPROBE_GROUP "/", g + 1))
		return false;
	memcpy(key, c, n);
	key[n] = 0;
	return true;
}

/*
 * kprobe_events is never truncated (that would remove other tools' probes,
 * and fails while any is enabled): each event of our group is written off,
 * then removed ("-:GROUP/EVENT"). The saved value matters only for the
 * others': they were there and stay.
 */
static int put_back_kprobes(const struct pd_tfs *t, const char *p)
{
	char key[256], cmd[300], *now = malloc(MAX_VALUE);
	int ret = now ? read_path(p, now, MAX_VALUE) : -ENOMEM;

	if (ret < 0) {
		free(now);
		return ret == -ENOENT ? 0 : ret;
	}
	ret = 0;
	for (const char *s = now; *s;) {
		size_t l = strcspn(s, "\n");
		char en[PATH_MAX + 300];
		int r;

		if (our_kprobe(s, l, key, sizeof(key))) {
			snprintf(en, sizeof(en), "%s/events/%s/enable", t->dir, key);
			if (!access(en, F_OK))
				tfs_write(t, en, "0", false);
			snprintf(cmd, sizeof(cmd), "-:%s\n", key);
			if ((r = tfs_write(t, p, cmd, true)) && !ret)
				ret = r;
		}
		s += l + (s[l] == '\n');
	}
	free(now);
	return ret;
}

/* Writes one saved value back to the top level. */
static int put_back(const struct pd_tfs *t, const char *rel, const char *value)
{
	char p[PATH_MAX], key[512], *now = NULL;
	int ret, r;

	if ((ret = top_path(t, rel, p, sizeof(p))))
		return ret;
	if (!strcmp(rel, "kprobe_events"))
		return put_back_kprobes(t, p);
	if (!is_list_file(rel))
		return tfs_write(t, p, value, false);
	if (!strcmp(rel, "set_ftrace_filter")) {
		if (!(now = malloc(MAX_VALUE)))
			return -ENOMEM;
		ret = drop_probes(t, p, value, now, MAX_VALUE);
	}
	if ((r = tfs_write(t, p, "", false))) {
		free(now);
		return ret ? ret : r;
	}
	for (const char *s = value; *s;) {
		size_t l = strcspn(s, "\n");
		char line[512];

		/* a probe still there survived the truncation */
		if (l && l + 1 < sizeof(line) &&
		    !(now && probe_key(s, l, key, sizeof(key)) && has_probe(now, key))) {
			/* one name per write; the newline ends it as echo would */
			memcpy(line, s, l);
			line[l] = '\n';
			line[l + 1] = 0;
			r = tfs_write(t, p, line, true);
			if (r && !ret)
				ret = r;
		}
		s += l + (s[l] == '\n');
	}
	free(now);
	return ret;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

/*
 * When a saved file is written back, by what the write does to the kernel's
 * hooks (see the file comment). A file we changed is first set to its
 * narrow value in its STOP step, and gets its saved value in its own step.
 */
enum restore_step {
	STEP_TRACING_OFF, /* tracing_on = 0 */
	STEP_PROBES_OFF,  /* set_ftrace_filter's function probes we added: removed */
	STEP_EVENTS_OFF,  /* events/.../enable that were off: back off */
	STEP_KPROBES_OFF, /* our kprobe events: removed (after they are off) */
	STEP_OPTIONS,	  /* options/...: while our tracer still has them */
	STEP_TRACER_NOP,  /* current_tracer = nop */
	STEP_NEUTRAL,	  /* filters, pids, clock, buffer size: no tracer runs now */
	STEP_TRACER,	  /* current_tracer = the saved one, if not nop */
	STEP_EVENTS_ON,	  /* events that were on */
	STEP_TRACING_ON,  /* tracing_on = the saved value */
	STEP_COUNT
};

static enum restore_step restore_step_of(const char *rel, const char *value)
{
	if (!strcmp(rel, "tracing_on"))
		return STEP_TRACING_ON;
	if (!strcmp(rel, "current_tracer"))
		return STEP_TRACER;
	if (!strcmp(rel, "kprobe_events"))
		return STEP_KPROBES_OFF;
	if (!strncmp(rel, "events/", 7) && ends_with(rel, "/enable"))
		return strcmp(value, "0") ? STEP_EVENTS_ON : STEP_EVENTS_OFF;
	if (!strncmp(rel, "options/", 8))
		return STEP_OPTIONS;
	return STEP_NEUTRAL;
}

/*
 * Writes @nr saved values back in the safe order. Goes on after a failure;
 * returns the first one (-errno) and names it in @err.
 */
static int put_back_all(const struct pd_tfs *t, char *const *rels, char *const *vals, size_t nr,
			char *err, size_t errlen)
{
	int ret = 0;

	for (int step = 0; step < STEP_COUNT; step++) {
		for (size_t i = 0; i < nr; i++) {
			enum restore_step own = restore_step_of(rels[i], vals[i]);
			const char *v = vals[i];
			int r;

			if (step == STEP_PROBES_OFF) {
				/* before the events: an enable_event probe that fired last
				 * leaves its event on when it is removed */
				if (strcmp(rels[i], "set_ftrace_filter"))
					continue;
				r = put_back_probes(t, rels[i], v);
			} else {
				if (step == STEP_TRACING_OFF && own == STEP_TRACING_ON)
					v = "0";
				else if (step == STEP_TRACER_NOP && own == STEP_TRACER)
					v = "nop";
				else if (step != (int)own)
					continue;
				if (step == STEP_TRACER && !strcmp(v, "nop"))
					continue; /* already nop since STEP_TRACER_NOP */
				r = put_back(t, rels[i], v);
				/* the files of our kprobe events go with them (a
				 * repair after they were removed) */
				if (r == -ENOENT &&
				    !strncmp(rels[i], "events/" PD_KPROBE_GROUP "/",
					     strlen("events/" PD_KPROBE_GROUP "/")))
					r = 0;
			}
			if (r && !ret) {
				ret = r;
				snprintf(err, errlen, "cannot restore %s/%s to '%.*s': %s", t->dir,
					 rels[i], (int)strcspn(v, "\n"), v, strerror(-r));
			}
		}
	}
	return ret;
}

static int remove_instance(const struct pd_tfs *t, const char *name)
{
	char p[PATH_MAX], f[PATH_MAX + 32], cur[64];
	int n = snprintf(p, sizeof(p), "%s/instances/%s", t->dir, name);

	if (n < 0 || (size_t)n >= sizeof(p))
		return -ENAMETOOLONG;
	/* the kernel tears an instance down safely, but stop it first all the
	 * same: no tracer may run while its filters go away */
	snprintf(f, sizeof(f), "%s/tracing_on", p);
	if (!access(f, F_OK))
		tfs_write(t, f, "0", false);
	/* only when a tracer is set: on 6.1 setting one, even nop, expands every
	 * ring buffer, the top level's too ("7 (expanded: 1408)" becomes "7") */
	snprintf(f, sizeof(f), "%s/current_tracer", p);
	if (read_path(f, cur, sizeof(cur)) > 0 && strncmp(cur, "nop", 3))
		tfs_write(t, f, "nop", false);
	if (rmdir(p) && errno != ENOENT)
		return -errno;
	return 0;
}

int pd_tfs_use_instance(struct pd_tfs *t, const char *name, char *err, size_t errlen)
{
	char p[PATH_MAX];
	int ret, n = snprintf(p, sizeof(p), "%s/instances/%s", t->dir, name);

	if (n < 0 || (size_t)n >= sizeof(p) || strlen(name) >= sizeof(t->instance))
		return -ENAMETOOLONG;
	if ((ret = remove_instance(t, name))) {
		snprintf(err, errlen, "cannot remove the leftover instance %s: %s", p,
			 strerror(-ret));
		return ret;
	}
	/* record it before creating it, so a crash in between is repaired too */
	snprintf(t->instance, sizeof(t->instance), "%s", name);
	if ((ret = write_state(t))) {
		t->instance[0] = 0;
		snprintf(err, errlen, "cannot write the state file %s: %s", t->state,
			 strerror(-ret));
		return ret;
	}
	if (mkdir(p, 0700)) {
		ret = -errno;
		snprintf(err, errlen, "cannot create the instance %s: %s", p, strerror(errno));
		t->instance[0] = 0;
		write_state(t);
		return ret;
	}
	return 0;
}

int pd_tfs_drop_instance(struct pd_tfs *t, char *err, size_t errlen)
{
	int ret;

	if (!t->instance[0])
		return 0;
	ret = remove_instance(t, t->instance);
	if (ret) {
		snprintf(err, errlen, "cannot remove the instance %s: %s", t->instance,
			 strerror(-ret));
		return ret;
	}
	t->instance[0] = 0;
	return write_state(t);
}

int pd_tfs_restore(struct pd_tfs *t, char *err, size_t errlen)
{
	char *rels[MAX_SAVED], *vals[MAX_SAVED];
	int ret = 0, r;

	/* the instance first: removing it only unhooks (its events go off), and
	 * our kprobe events cannot be removed while it has them enabled */
	if (t->instance[0]) {
		r = remove_instance(t, t->instance);
		if (r) {
			ret = r;
			snprintf(err, errlen, "cannot remove the instance %s: %s", t->instance,
				 strerror(-r));
		}
		t->instance[0] = 0;
	}
	for (size_t i = 0; i < t->nr_saved; i++) {
		rels[i] = t->saved[i].rel;
		vals[i] = t->saved[i].value;
	}
	r = put_back_all(t, rels, vals, t->nr_saved, err, errlen);
	if (r && !ret)
		ret = r;
	for (size_t i = 0; i < t->nr_saved; i++)
		free(t->saved[i].value);
	t->nr_saved = 0;
	r = write_state(t);
	if (r && !ret) {
		ret = r;
		snprintf(err, errlen, "cannot remove the state file %s: %s", t->state,
			 strerror(-r));
	}
	return ret;
}

static int unhex(const char *h, char *out, size_t outlen)
{
	size_t n = 0;

	if (!strcmp(h, "-")) {
		out[0] = 0;
		return 0;
	}
	for (; h[0] && h[1]; h += 2) {
		unsigned v;

		if (n + 1 >= outlen || sscanf(h, "%2x", &v) != 1)
			return -EINVAL;
		out[n++] = (char)v;
	}
	if (*h)
		return -EINVAL;
	out[n] = 0;
	return 0;
}

static bool pid_is_ptescoped(int pid)
{
	char p[64], comm[32];

	if (pid <= 0 || pid == (int)getpid())
		return false;
	snprintf(p, sizeof(p), "/proc/%d/comm", pid);
	if (read_path(p, comm, sizeof(comm)) < 0)
		return false;
	comm[strcspn(comm, "\n")] = 0;
	return !strcmp(comm, "ptescoped");
}

struct state_header {
	char boot[64], inst[80];
	int pid;
};

/* The state file's header lines (magic, boot, pid, instance). 0 or -EINVAL. */
static int read_state_header(FILE *f, struct state_header *h)
{
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	*h = (struct state_header){0};
	if (getline(&line, &cap, f) < 0 || strncmp(line, STATE_MAGIC, strlen(STATE_MAGIC))) {
		ret = -EINVAL;
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "boot ", 5))
			snprintf(h->boot, sizeof(h->boot), "%s", line + 5);
		else if (!strncmp(line, "pid ", 4))
			h->pid = (int)strtol(line + 4, NULL, 10);
		else if (!strncmp(line, "instance ", 9))
			snprintf(h->inst, sizeof(h->inst), "%s", line + 9);
	}
out:
	free(line);
	return ret;
}

/* Writes back the state file's saved files in the safe order. Returns how
 * many it read (all tried) or -errno with @msg. */
static int restore_state_files(struct pd_tfs *t, FILE *f, char *msg, size_t msglen)
{
	char *rels[MAX_SAVED] = {0}, *vals[MAX_SAVED] = {0}, *line = NULL, *buf = malloc(MAX_VALUE);
	size_t cap = 0, nr = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	rewind(f);
	while (getline(&line, &cap, f) > 0 && nr < MAX_SAVED) {
		char *sp;

		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "file ", 5) || !(sp = strchr(line + 5, ' ')))
			continue;
		*sp = 0;
		if (unhex(sp + 1, buf, MAX_VALUE))
			continue;
		rels[nr] = strdup(line + 5);
		vals[nr] = strdup(buf);
		if (!rels[nr] || !vals[nr]) {
			free(rels[nr]);
			free(vals[nr]);
			break;
		}
		nr++;
	}
	ret = put_back_all(t, rels, vals, nr, msg, msglen);
	for (size_t i = 0; i < nr; i++) {
		free(rels[i]);
		free(vals[i]);
	}
	free(line);
	free(buf);
	return ret ? ret : (int)nr;
}

/* Repairs from an open state file; its instance name in @inst. Returns the
 * number of things repaired or -errno, with @msg. */
static int repair_from_state(struct pd_tfs *t, FILE *f, char *inst, size_t instlen, char *msg,
			     size_t msglen)
{
	struct state_header h;
	int files, r;

	if (read_state_header(f, &h)) {
		snprintf(msg, msglen, "%s is not a ptescoped state file; remove it", t->state);
		return -EINVAL;
	}
	snprintf(inst, instlen, "%s", h.inst);
	if (strcmp(h.boot, t->boot_id[0] ? t->boot_id : "-")) {
		/* saved before a reboot: tracefs has been fresh since */
		unlink(t->state);
		snprintf(msg, msglen, "dropped the state file of an earlier boot");
		return 0;
	}
	if (pid_is_ptescoped(h.pid) && !kill(h.pid, 0)) {
		snprintf(msg, msglen,
			 "tracefs is owned by ptescoped pid %d, still running (state file %s)", h.pid,
			 t->state);
		return -EBUSY;
	}
	/* the instance first (as pd_tfs_restore), and the files even when it
	 * cannot be removed */
	r = h.inst[0] ? remove_instance(t, h.inst) : 0;
	files = restore_state_files(t, f, msg, msglen);
	if (r) {
		snprintf(msg, msglen, "cannot remove the leftover instance %s: %s", h.inst,
			 strerror(-r));
		return r;
	}
	if (files < 0)
		return files;
	unlink(t->state);
	snprintf(msg, msglen, "repaired a setup left by ptescoped pid %d: %d file(s) restored%s",
		 h.pid, files, h.inst[0] ? ", instance removed" : "");
	return files + (h.inst[0] ? 1 : 0);
}

/* An instance of our name with no state file: ours, left by a run that died
 * young. Returns 1 when removed, 0 when there is none, or -errno. */
static int remove_leftover_instance(struct pd_tfs *t, const char *instance, char *msg,
				    size_t msglen)
{
	char p[PATH_MAX];
	int r, n = snprintf(p, sizeof(p), "%s/instances/%s", t->dir, instance);

	if (n <= 0 || (size_t)n >= sizeof(p) || access(p, F_OK))
		return 0;
	if ((r = remove_instance(t, instance))) {
		snprintf(msg, msglen, "cannot remove the leftover instance %s: %s", p, strerror(-r));
		return r;
	}
	snprintf(msg, msglen, "removed the leftover instance %s", p);
	return 1;
}

int pd_tfs_repair(struct pd_tfs *t, const char *instance, char *msg, size_t msglen)
{
	char inst[80] = "";
	int repaired = 0, r;
	FILE *f;

	msg[0] = 0;
	if ((f = fopen(t->state, "re"))) {
		repaired = repair_from_state(t, f, inst, sizeof(inst), msg, msglen);
		fclose(f);
		if (repaired < 0)
			return repaired;
	} else if (errno != ENOENT) {
		r = -errno;
		snprintf(msg, msglen, "cannot read the state file %s: %s", t->state, strerror(errno));
		return r;
	}
	if (!instance || !strcmp(instance, inst))
		return repaired;
	r = remove_leftover_instance(t, instance, msg, msglen);
	return r < 0 ? r : repaired + r;
}

/* Whether events/GROUP/enable under @base (a tracefs or instance directory)
 * reads anything but "0". */
static bool group_enabled(const char *base)
{
	char p[PATH_MAX], buf[16];

	if ((size_t)snprintf(p, sizeof(p), "%s/events/" PD_KPROBE_GROUP "/enable", base) >=
	    sizeof(p))
		return false;
	return read_path(p, buf, sizeof(buf)) > 0 && buf[0] != '0';
}

int pd_tfs_group_in_use(struct pd_tfs *t, const char *own, bool remove, char *what, size_t len)
{
	char p[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	what[0] = 0;
	if (group_enabled(t->dir)) {
		snprintf(what, len, "the top level has them enabled");
		return -EBUSY;
	}
	snprintf(p, sizeof(p), "%s/instances", t->dir);
	if (!(d = opendir(p)))
		return 0;
	while ((e = readdir(d))) {
		char inst[PATH_MAX];

		if (e->d_name[0] == '.' || (own && !strcmp(e->d_name, own)))
			continue;
		if ((size_t)snprintf(inst, sizeof(inst), "%s/%s", p, e->d_name) >= sizeof(inst) ||
		    !group_enabled(inst))
			continue;
		if (remove && !remove_instance(t, e->d_name))
			continue;
		snprintf(what, len, "instances/%s has them enabled", e->d_name);
		ret = -EBUSY;
		break;
	}
	closedir(d);
	return ret;
}

int pd_tfs_check_top_free(struct pd_tfs *t, char *what, size_t len)
{
	char buf[4096], p[PATH_MAX];
	int n;

	what[0] = 0;
	if (!top_path(t, "current_tracer", p, sizeof(p)) && read_path(p, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = 0;
		if (strcmp(buf, "nop")) {
			snprintf(what, len, "current_tracer is '%s'", buf);
			return -EBUSY;
		}
	}
	static const char *const lists[] = {"set_graph_function", "set_ftrace_filter", "set_event"};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		if (top_path(t, lists[i], p, sizeof(p)))
			continue;
		n = read_path(p, buf, sizeof(buf));
		if (n > 0 && !strncmp(buf, PD_KPROBE_GROUP ":", strlen(PD_KPROBE_GROUP) + 1)) {
			snprintf(what, len,
				 "%s lists ptescoped's own kprobe events ('%.*s'), left by a run "
				 "whose state file is gone, or another ptescoped runs",
				 lists[i], (int)strcspn(buf, "\n"), buf);
			return -EBUSY;
		}
		if (n == -EFBIG || (n > 0 && buf[0] != '#')) {
			snprintf(what, len, "%s is set ('%.*s'%s)", lists[i],
				 (int)strcspn(buf, "\n"), buf, strchr(buf, '\n') ? ", ..." : "");
			return -EBUSY;
		}
	}
	return 0;
}
