/* SPDX-License-Identifier: MIT */
/*
 * Save-before-change and restore of tracefs files, with a crash-surviving
 * state file (tfs.h, tfs_state.h). Sized for the dozen files a capture mode
 * touches: at most PD_TFS_MAX_SAVED saved values of at most PD_TFS_MAX_VALUE
 * bytes each (a larger filter set by another tool is refused rather than
 * half-saved).
 *
 * What is ours: the files of the top level this run saved and then wrote
 * (each value it read back after a write is recorded, "ours"), the kprobe
 * events it created (recorded before each is created), and its instance
 * (held under the host-wide instance lock by the caller). A restore writes a
 * saved file back only while the file still holds one of our values (or a
 * write to it was in flight when the run died): a tool that took the file
 * since keeps it. Kprobe events are removed one by one, only those recorded.
 * The top level is used under the host-wide top lock (tfs_lock.h), taken at
 * the first save and given back after the restore.
 *
 * Restoring is ordered by what a write does to the kernel's hooks, never by
 * when the file was saved (put_back_all): first everything that narrows
 * (tracing off, the function probes we added to set_ftrace_filter, our
 * events off, tracer options while our tracer still owns them, the tracer to
 * nop), then what is neutral once no tracer runs
 * (filters, clock, buffer size), and last what widens again to the state
 * we found (the saved tracer, events that were on, tracing on). Clearing a
 * filter while function_graph is the tracer hooks every function of the
 * kernel at once: that soft-locked 6.1 and oopsed 6.12 in the VM tests.
 * Function probes ("func:enable_event:sys:event") survive a truncation of
 * set_ftrace_filter: only "!func:cmd:args" removes one; and removing an
 * enable_event probe that fired last leaves its event enabled, so the event
 * is written off after its probes are gone. kprobe_events is never
 * truncated.
 *
 * Every file is opened beneath the tracefs directory (openat2 with
 * RESOLVE_BENEATH and no symlinks, or openat with O_NOFOLLOW on a name of
 * the allow-list where openat2 is refused).
 */
#include "tfs.h"

#include "tfs_lock.h"
#include "tfs_state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_VALUE PD_TFS_MAX_VALUE

struct pd_tfs {
	pd_tfs_observer_fn observe; /* tests: sees every write */
	void *observe_ctx;
	char dir[PATH_MAX];
	int dirfd; /* the tracefs directory: every file is opened beneath it */
	char state[PATH_MAX];
	char lock_dir[PATH_MAX];  /* "": no host-wide locks (tests of one process) */
	struct pd_tfs_lock *top;  /* held while top-level files are saved */
	struct pd_tfs_state st;	  /* saved files, our values, kprobe events, instance */
	char skipped[512];	  /* files the last restore left as another tool set them */
};

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
	int ret;

	if (!t)
		return -ENOMEM;
	t->dirfd = open(tracing_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0) {
		ret = -errno;
		free(t);
		return ret;
	}
	snprintf(t->dir, sizeof(t->dir), "%s", tracing_dir);
	snprintf(t->state, sizeof(t->state), "%s", state_file);
	read_boot_id(t->st.boot, sizeof(t->st.boot));
	t->st.version = 2;
	*out = t;
	return 0;
}

void pd_tfs_set_lock_dir(struct pd_tfs *t, const char *lock_dir)
{
	snprintf(t->lock_dir, sizeof(t->lock_dir), "%s", lock_dir ? lock_dir : "");
}

void pd_tfs_free(struct pd_tfs *t)
{
	if (!t)
		return;
	pd_tfs_lock_release(t->top);
	pd_tfs_state_clear(&t->st);
	close(t->dirfd);
	free(t);
}

const char *pd_tfs_instance(const struct pd_tfs *t)
{
	return t->st.instance[0] ? t->st.instance : NULL;
}

const char *pd_tfs_dir(const struct pd_tfs *t)
{
	return t->dir;
}

bool pd_tfs_dirty(const struct pd_tfs *t)
{
	return t->st.nr_saved || t->st.instance[0] || t->st.nr_kprobes;
}

const char *pd_tfs_skipped(const struct pd_tfs *t)
{
	return t->skipped;
}

int pd_tfs_kprobe_group(const char *instance, char *out, size_t len)
{
	uint32_t h = 2166136261u;
	size_t n = 0, k;
	bool changed = false;
	int w;

	if (!instance || !strcmp(instance, PD_DEFAULT_INSTANCE))
		return snprintf(out, len, "%s", PD_KPROBE_GROUP) >= (int)len ? -ENAMETOOLONG : 0;
	w = snprintf(out, len, "%s_", PD_KPROBE_GROUP);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	n = (size_t)w;
	for (k = 0; instance[k]; k++) {
		char c = instance[k];

		h = (h ^ (unsigned char)c) * 16777619u;
		if (c == '-' || c == '.') {
			c = '_';
			changed = true;
		}
		if (k < 32 && n + 1 < len)
			out[n++] = c;
		else
			changed = true;
	}
	out[n] = 0;
	/* names that map to the same characters stay apart */
	if (changed && (size_t)snprintf(out + n, len - n, "_%08x", h) >= len - n)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------ file I/O */

/* @rel of the current target (instances/NAME/REL, or REL at the top level
 * and for the files of the whole tracefs), relative to the mount. */
static bool is_global(const char *rel)
{
	return !strcmp(rel, "kprobe_events") || !strcmp(rel, "kprobe_profile") ||
	       !strcmp(rel, "dynamic_events") || !strcmp(rel, "error_log");
}

static int target_rel(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	int n = !t->st.instance[0] || is_global(rel)
		    ? snprintf(buf, len, "%s", rel)
		    : snprintf(buf, len, "instances/%s/%s", t->st.instance, rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Opens @rel (relative to the mount) beneath the tracefs directory. */
static int open_beneath(const struct pd_tfs *t, const char *rel, int flags)
{
	static bool no_openat2;
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					  RESOLVE_NO_MAGICLINKS};
	int fd = -1;

	if (!no_openat2) {
		fd = (int)syscall(SYS_openat2, t->dirfd, rel, &how, sizeof(how));
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return fd;
		no_openat2 = errno == ENOSYS;
	}
	/* no openat2 (or a filter refused it): names never hold "..", and
	 * the last component is not followed */
	if (strstr(rel, "..") || rel[0] == '/') {
		errno = EINVAL;
		return -1;
	}
	return openat(t->dirfd, rel, flags | O_CLOEXEC | O_NOFOLLOW);
}

static int read_fd(int fd, char *buf, size_t len)
{
	size_t got = 0;
	int ret = 0;

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
	buf[got] = 0;
	return ret ? ret : (int)got;
}

/* Reads a plain file outside tracefs (/proc). */
static int read_path(const char *p, char *buf, size_t len)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = read_fd(fd, buf, len);
	close(fd);
	return ret;
}

/* Reads @rel (relative to the mount). Length or -errno. */
static int read_rel(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	int fd = open_beneath(t, rel, O_RDONLY), ret;

	if (fd < 0) {
		buf[0] = 0;
		return -errno;
	}
	ret = read_fd(fd, buf, len);
	close(fd);
	return ret;
}

/* Every write to tracefs goes through here, so an observer sees them all, in order. */
static int write_rel(const struct pd_tfs *t, const char *rel, const char *value, bool append)
{
	uint64_t t0 = pt_mono_ns();
	size_t len = strlen(value);
	int fd = open_beneath(t, rel, O_WRONLY | (append ? O_APPEND : O_TRUNC)), ret = 0;

	if (fd < 0) {
		ret = -errno;
	} else {
		if (len) {
			ssize_t n = write(fd, value, len);

			if (n < 0)
				ret = -errno;
			else if ((size_t)n != len)
				ret = -EIO;
		}
		if (close(fd) && !ret)
			ret = -errno;
	}
	if (t->observe)
		t->observe(t->observe_ctx, rel, value, append, ret, pt_mono_ns() - t0);
	return ret;
}

int pd_tfs_path(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	char r[PATH_MAX];
	int n, ret = target_rel(t, rel, r, sizeof(r));

	if (ret)
		return ret;
	n = snprintf(buf, len, "%s/%s", t->dir, r);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool pd_tfs_exists(const struct pd_tfs *t, const char *rel)
{
	struct stat st;
	char r[PATH_MAX];

	return !target_rel(t, rel, r, sizeof(r)) &&
	       !fstatat(t->dirfd, r, &st, AT_SYMLINK_NOFOLLOW);
}

int pd_tfs_read(const struct pd_tfs *t, const char *rel, char *buf, size_t len)
{
	char r[PATH_MAX];
	int ret = target_rel(t, rel, r, sizeof(r));

	return ret ? ret : read_rel(t, r, buf, len);
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

		/* + 2: a last line without its newline gets one */
		v = malloc(strlen(raw) + 2);
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


/* What @rel (at the top level) holds now, normalised; NULL when it cannot be read. */
static char *current_value(const struct pd_tfs *t, const char *rel)
{
	char *raw = malloc(MAX_VALUE), *v = NULL;

	if (raw && read_rel(t, rel, raw, MAX_VALUE) >= 0 && normalise(rel, raw, &v))
		v = NULL;
	free(raw);
	return v;
}

/* ------------------------------------------------------ the state file */

static int persist(struct pd_tfs *t)
{
	t->st.pid = (int)getpid();
	if (!pd_tfs_dirty(t))
		return unlink(t->state) && errno != ENOENT ? -errno : 0;
	return pd_tfs_state_write(t->state, &t->st);
}

static int persist_or_say(struct pd_tfs *t, char *err, size_t errlen)
{
	int ret = persist(t);

	if (ret)
		snprintf(err, errlen, "cannot write the state file %s: %s", t->state,
			 strerror(-ret));
	return ret;
}

static struct pd_tfs_saved *saved_of(struct pd_tfs *t, const char *rel)
{
	for (size_t i = 0; i < t->st.nr_saved; i++)
		if (!strcmp(t->st.saved[i].rel, rel))
			return &t->st.saved[i];
	return NULL;
}

/* The host-wide top lock, taken before the first top-level file is saved. */
static int take_top(struct pd_tfs *t, char *err, size_t errlen)
{
	if (!t->lock_dir[0] || t->top)
		return 0;
	return pd_tfs_lock_take(t->lock_dir, t->dir, "top", &t->top, err, errlen);
}

/* Saves @rel (a top-level file we are about to change) once. */
static int save(struct pd_tfs *t, const char *rel, char *err, size_t errlen)
{
	struct pd_tfs_saved *sv;
	char *v;
	int ret;

	if (saved_of(t, rel))
		return 0;
	if (t->st.nr_saved == PD_TFS_MAX_SAVED || strlen(rel) >= sizeof(sv->rel) ||
	    !pd_tfs_rel_allowed(rel)) {
		snprintf(err, errlen, "cannot save %s: too many files or not one ptescoped restores",
			 rel);
		return -ENOSPC;
	}
	if ((ret = take_top(t, err, errlen)))
		return ret;
	{
		char *raw = malloc(MAX_VALUE);
		int n = raw ? read_rel(t, rel, raw, MAX_VALUE) : -ENOMEM;

		if (n < 0) {
			snprintf(err, errlen, "cannot save %s/%s: %s", t->dir, rel,
				 n == -EFBIG ? "too large to save" : strerror(-n));
			free(raw);
			return n;
		}
		ret = normalise(rel, raw, &v);
		free(raw);
	}
	if (ret) {
		snprintf(err, errlen, "cannot save %s/%s: unexpected content", t->dir, rel);
		return ret;
	}
	sv = &t->st.saved[t->st.nr_saved++];
	*sv = (struct pd_tfs_saved){.value = v};
	snprintf(sv->rel, sizeof(sv->rel), "%s", rel);
	if ((ret = persist_or_say(t, err, errlen))) {
		t->st.nr_saved--;
		free(v);
	}
	return ret;
}

/* Records what @sv's file holds after our write (one of "ours"). True when new. */
static bool note_ours(struct pd_tfs *t, struct pd_tfs_saved *sv)
{
	char *v = current_value(t, sv->rel);

	if (!v)
		return false;
	for (size_t k = 0; k < sv->nr_ours; k++) {
		if (!strcmp(sv->ours[k], v)) {
			free(v);
			return false;
		}
	}
	if (sv->nr_ours == PD_TFS_MAX_OURS) {
		/* the oldest goes: setup values long overwritten */
		free(sv->ours[0]);
		memmove(sv->ours, sv->ours + 1, (PD_TFS_MAX_OURS - 1) * sizeof(sv->ours[0]));
		sv->nr_ours--;
	}
	sv->ours[sv->nr_ours++] = v;
	return true;
}

/* The GROUP/EVENT a kprobe_events line defines ("p:G/E sym", "r512:G/E")
 * or removes ("-:G/E") in @key; false for anything else. */
static bool kprobe_key(const char *line, char *key, size_t keylen, bool *removal)
{
	const char *c = strchr(line, ':');
	size_t n;

	if (!c || !(line[0] == 'p' || line[0] == 'r' || line[0] == '-'))
		return false;
	*removal = line[0] == '-';
	n = strcspn(c + 1, " \n");
	if (!n || n >= keylen)
		return false;
	memcpy(key, c + 1, n);
	key[n] = 0;
	return strchr(key, '/') != NULL;
}

static int kprobe_at(const struct pd_tfs *t, const char *key)
{
	for (size_t i = 0; i < t->st.nr_kprobes; i++)
		if (!strcmp(t->st.kprobe[i], key))
			return (int)i;
	return -1;
}

static void kprobe_forget(struct pd_tfs *t, int i)
{
	t->st.nr_kprobes--;
	memmove(t->st.kprobe[i], t->st.kprobe[i + 1],
		(t->st.nr_kprobes - (size_t)i) * sizeof(t->st.kprobe[0]));
}

/* A kprobe_events line: an event of ours is recorded before it is created
 * and forgotten once removed; other lines are written as they are. */
static int change_kprobes(struct pd_tfs *t, const char *value, char *err, size_t errlen)
{
	char key[sizeof(t->st.kprobe[0])];
	bool removal = false, ours = kprobe_key(value, key, sizeof(key), &removal) &&
				    pd_tfs_kprobe_key_ok(key);
	int ret, at;

	if (ours && !removal && kprobe_at(t, key) < 0) {
		if (t->st.nr_kprobes == PD_TFS_MAX_KPROBES) {
			snprintf(err, errlen, "cannot record the kprobe event %s: too many", key);
			return -ENOSPC;
		}
		snprintf(t->st.kprobe[t->st.nr_kprobes++], sizeof(t->st.kprobe[0]), "%s", key);
		if ((ret = persist_or_say(t, err, errlen))) {
			t->st.nr_kprobes--;
			return ret;
		}
	}
	ret = write_rel(t, "kprobe_events", value, true);
	at = ours ? kprobe_at(t, key) : -1;
	if (at >= 0 && (removal ? !ret || ret == -ENOENT : ret != 0)) {
		/* removed, or never created */
		kprobe_forget(t, at);
		persist(t);
	}
	if (ret)
		snprintf(err, errlen, "cannot write '%.*s' to %s/kprobe_events: %s",
			 (int)strcspn(value, "\n"), value, t->dir, strerror(-ret));
	return ret;
}

static int change(struct pd_tfs *t, const char *rel, const char *value, bool append, char *err,
		  size_t errlen)
{
	struct pd_tfs_saved *sv = NULL;
	char r[PATH_MAX];
	int ret;

	if (!strcmp(rel, "kprobe_events"))
		return change_kprobes(t, value, err, errlen);
	if ((ret = target_rel(t, rel, r, sizeof(r))))
		return ret;
	if (!t->st.instance[0] && !is_global(rel) && strcmp(rel, "trace")) {
		/* a top-level file: saved, and marked in flight while written */
		if ((ret = save(t, rel, err, errlen)))
			return ret;
		sv = saved_of(t, rel);
		if (!sv->pending) {
			sv->pending = true;
			if ((ret = persist_or_say(t, err, errlen)))
				return ret;
		}
	}
	ret = write_rel(t, r, value, append);
	if (sv) {
		note_ours(t, sv);
		sv->pending = false;
		persist(t);
	}
	if (ret)
		snprintf(err, errlen, "cannot write '%.*s' to %s/%s: %s", (int)strcspn(value, "\n"),
			 value, t->dir, r, strerror(-ret));
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
static int drop_probes(const struct pd_tfs *t, const char *rel, const char *value, char *now,
		       size_t len)
{
	char key[512], cmd[520];
	int ret = read_rel(t, rel, now, len);

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
			r = write_rel(t, rel, cmd, true);
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
	char *now = malloc(MAX_VALUE);
	int ret = now ? drop_probes(t, rel, value, now, MAX_VALUE) : -ENOMEM;

	free(now);
	return ret;
}

/* Writes one saved value back to the top level. */
static int put_back(const struct pd_tfs *t, const char *rel, const char *value)
{
	char key[512], *now = NULL;
	int ret = 0, r;

	if (!is_list_file(rel))
		return write_rel(t, rel, value, false);
	if (!strcmp(rel, "set_ftrace_filter")) {
		if (!(now = malloc(MAX_VALUE)))
			return -ENOMEM;
		ret = drop_probes(t, rel, value, now, MAX_VALUE);
	}
	if ((r = write_rel(t, rel, "", false))) {
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
			r = write_rel(t, rel, line, true);
			if (r && !ret)
				ret = r;
		}
		s += l + (s[l] == '\n');
	}
	free(now);
	return ret;
}

/* Writes kprobe event @key off and removes it. A missing one is gone already. */
static int remove_kprobe(const struct pd_tfs *t, const char *key)
{
	char en[300], cmd[300];
	struct stat st;
	int r;

	snprintf(en, sizeof(en), "events/%s/enable", key);
	if (!fstatat(t->dirfd, en, &st, AT_SYMLINK_NOFOLLOW))
		write_rel(t, en, "0", false);
	snprintf(cmd, sizeof(cmd), "-:%s\n", key);
	r = write_rel(t, "kprobe_events", cmd, true);
	return r == -ENOENT ? 0 : r;
}

/* Every event of kprobe group @group, off and removed one by one. */
static int remove_group(const struct pd_tfs *t, const char *group)
{
	size_t g = strlen(group);
	char key[256], *now = malloc(MAX_VALUE);
	int ret = now ? read_rel(t, "kprobe_events", now, MAX_VALUE) : -ENOMEM;

	if (ret < 0) {
		free(now);
		return ret == -ENOENT ? 0 : ret;
	}
	ret = 0;
	for (const char *s = now; *s;) {
		size_t l = strcspn(s, "\n");
		const char *c = memchr(s, ':', l);
		size_t n = c ? strcspn(c + 1, " \n") : 0;
		int r;

		if (c && (s[0] == 'p' || s[0] == 'r') && n < sizeof(key) &&
		    !strncmp(c + 1, group, g) && c[1 + g] == '/') {
			memcpy(key, c + 1, n);
			key[n] = 0;
			if ((r = remove_kprobe(t, key)) && !ret)
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
	if (!strncmp(rel, "events/", 7) && ends_with(rel, "/enable"))
		return strcmp(value, "0") ? STEP_EVENTS_ON : STEP_EVENTS_OFF;
	if (!strncmp(rel, "options/", 8))
		return STEP_OPTIONS;
	return STEP_NEUTRAL;
}


int pd_tfs_remove_group(struct pd_tfs *t, const char *group)
{
	int ret = remove_group(t, group);

	for (size_t i = t->st.nr_kprobes; i-- > 0;)
		if (!strncmp(t->st.kprobe[i], group, strlen(group)) &&
		    t->st.kprobe[i][strlen(group)] == '/')
			kprobe_forget(t, (int)i);
	persist(t);
	return ret;
}

/* What a restore works from: the saved files, which of them to write back,
 * the kprobe events to remove. */
struct undo {
	const struct pd_tfs_saved *saved;
	size_t nr;
	bool keep[PD_TFS_MAX_SAVED];
	const char (*kprobe)[96];
	size_t nr_kprobes;
	bool legacy_kprobes; /* a version 1 file: the group's events */
	int restored, removed; /* files written back, kprobe events removed */
};

/*
 * Which saved files to write back: those that still hold a value we wrote
 * (or were being written). One that holds something else was taken by
 * another tool since and stays as it is (named in @skipped); one that holds
 * its saved value already needs nothing.
 */
static void decide(const struct pd_tfs *t, struct undo *u, char *skipped, size_t len)
{
	size_t n = 0;

	skipped[0] = 0;
	for (size_t i = 0; i < u->nr; i++) {
		const struct pd_tfs_saved *sv = &u->saved[i];
		char *now;
		bool ours = sv->pending;

		if (!strcmp(sv->rel, "kprobe_events")) {
			/* a version 1 file's: its events go by the group (never truncated) */
			u->keep[i] = false;
			continue;
		}
		now = current_value(t, sv->rel);

		for (size_t k = 0; now && !ours && k < sv->nr_ours; k++)
			ours = !strcmp(now, sv->ours[k]);
		u->keep[i] = ours || !now;
		u->restored += u->keep[i];
		if (!u->keep[i] && strcmp(now, sv->value) && n < len)
			n += (size_t)snprintf(skipped + n, len - n, "%s%s", n ? ", " : "", sv->rel);
		free(now);
	}
}

static int undo_kprobes(const struct pd_tfs *t, struct undo *u)
{
	/* a version 1 state file recorded no events: every event of the group
	 * "ptescope" was that version's, removed as it did */
	int ret = u->legacy_kprobes ? remove_group(t, PD_KPROBE_GROUP) : 0, r;

	/* the newest first */
	for (size_t i = u->nr_kprobes; i-- > 0;) {
		if ((r = remove_kprobe(t, u->kprobe[i])) && !ret)
			ret = r;
		u->removed += !r;
	}
	return ret;
}

/*
 * Writes the kept saved values back in the safe order and removes the kprobe
 * events. Goes on after a failure; returns the first one (-errno) and names
 * it in @err.
 */
static int put_back_all(const struct pd_tfs *t, struct undo *u, char *err, size_t errlen)
{
	int ret = 0;

	for (int step = 0; step < STEP_COUNT; step++) {
		if (step == STEP_KPROBES_OFF) {
			int r = undo_kprobes(t, u);

			if (r && !ret) {
				ret = r;
				snprintf(err, errlen, "cannot remove our kprobe events from %s: %s",
					 t->dir, strerror(-r));
			}
			continue;
		}
		for (size_t i = 0; i < u->nr; i++) {
			const char *rel = u->saved[i].rel, *v = u->saved[i].value;
			enum restore_step own = restore_step_of(rel, v);
			int r;

			if (!u->keep[i])
				continue;
			if (step == STEP_PROBES_OFF) {
				/* before the events: an enable_event probe that fired last
				 * leaves its event on when it is removed */
				if (strcmp(rel, "set_ftrace_filter"))
					continue;
				r = put_back_probes(t, rel, v);
			} else {
				if (step == STEP_TRACING_OFF && own == STEP_TRACING_ON)
					v = "0";
				else if (step == STEP_TRACER_NOP && own == STEP_TRACER)
					v = "nop";
				else if (step != (int)own)
					continue;
				if (step == STEP_TRACER && !strcmp(v, "nop"))
					continue; /* already nop since STEP_TRACER_NOP */
				r = put_back(t, rel, v);
				/* the files of our kprobe events go with them */
				if (r == -ENOENT && !strncmp(rel, "events/" PD_KPROBE_GROUP,
							     strlen("events/" PD_KPROBE_GROUP)))
					r = 0;
			}
			if (r && !ret) {
				ret = r;
				snprintf(err, errlen, "cannot restore %s/%s to '%.*s': %s", t->dir,
					 rel, (int)strcspn(v, "\n"), v, strerror(-r));
			}
		}
	}
	return ret;
}

static int remove_instance(const struct pd_tfs *t, const char *name)
{
	char rel[PATH_MAX], f[PATH_MAX + 32], cur[64];

	if (!pd_tfs_instance_name_ok(name))
		return -EINVAL;
	snprintf(rel, sizeof(rel), "instances/%s", name);
	/* the kernel tears an instance down safely, but stop it first all the
	 * same: no tracer may run while its filters go away */
	snprintf(f, sizeof(f), "%s/tracing_on", rel);
	if (!faccessat(t->dirfd, f, F_OK, AT_SYMLINK_NOFOLLOW))
		write_rel(t, f, "0", false);
	/* only when a tracer is set: on 6.1 setting one, even nop, expands every
	 * ring buffer, the top level's too ("7 (expanded: 1408)" becomes "7") */
	snprintf(f, sizeof(f), "%s/current_tracer", rel);
	if (read_rel(t, f, cur, sizeof(cur)) > 0 && strncmp(cur, "nop", 3))
		write_rel(t, f, "nop", false);
	if (unlinkat(t->dirfd, rel, AT_REMOVEDIR) && errno != ENOENT)
		return -errno;
	return 0;
}

int pd_tfs_use_instance(struct pd_tfs *t, const char *name, char *err, size_t errlen)
{
	char rel[PATH_MAX];
	int ret;

	if (!pd_tfs_instance_name_ok(name) || strlen(name) >= sizeof(t->st.instance))
		return -EINVAL;
	snprintf(rel, sizeof(rel), "instances/%s", name);
	if ((ret = remove_instance(t, name))) {
		snprintf(err, errlen, "cannot remove the leftover instance %s/%s: %s", t->dir, rel,
			 strerror(-ret));
		return ret;
	}
	/* record it before creating it, so a crash in between is repaired too */
	snprintf(t->st.instance, sizeof(t->st.instance), "%s", name);
	if ((ret = persist_or_say(t, err, errlen))) {
		t->st.instance[0] = 0;
		return ret;
	}
	if (mkdirat(t->dirfd, rel, 0700)) {
		ret = -errno;
		snprintf(err, errlen, "cannot create the instance %s/%s: %s", t->dir, rel,
			 strerror(errno));
		t->st.instance[0] = 0;
		persist(t);
		return ret;
	}
	return 0;
}

int pd_tfs_drop_instance(struct pd_tfs *t, char *err, size_t errlen)
{
	int ret;

	if (!t->st.instance[0])
		return 0;
	ret = remove_instance(t, t->st.instance);
	if (ret) {
		snprintf(err, errlen, "cannot remove the instance %s: %s", t->st.instance,
			 strerror(-ret));
		return ret;
	}
	t->st.instance[0] = 0;
	return persist(t);
}

int pd_tfs_restore(struct pd_tfs *t, char *err, size_t errlen)
{
	struct undo u = {.saved = t->st.saved,
			 .nr = t->st.nr_saved,
			 .kprobe = (const char(*)[96])t->st.kprobe,
			 .nr_kprobes = t->st.nr_kprobes};
	int ret = 0, r;

	/* the instance first: removing it only unhooks (its events go off), and
	 * our kprobe events cannot be removed while it has them enabled */
	if (t->st.instance[0] && (r = remove_instance(t, t->st.instance))) {
		ret = r;
		snprintf(err, errlen, "cannot remove the instance %s: %s", t->st.instance,
			 strerror(-r));
	}
	decide(t, &u, t->skipped, sizeof(t->skipped));
	r = put_back_all(t, &u, err, errlen);
	if (r && !ret)
		ret = r;
	/* what failed stays in the state file for the next start's repair
	 * (files put back since hold their saved value: not ours, left alone) */
	if (!ret) {
		t->st.instance[0] = 0;
		pd_tfs_state_clear(&t->st);
		if ((r = persist(t))) {
			ret = r;
			snprintf(err, errlen, "cannot remove the state file %s: %s", t->state,
				 strerror(-r));
		}
	} else {
		t->st.instance[0] = 0;
		pd_tfs_state_clear(&t->st);
	}
	pd_tfs_lock_release(t->top);
	t->top = NULL;
	return ret;
}

/* ---------------------------------------------------------------- repair */

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

/* Undoes what state @s recorded; the counts in @u, the message in @msg. */
static int undo_state(struct pd_tfs *t, const struct pd_tfs_state *s, struct undo *u, char *msg,
		      size_t msglen)
{
	char skipped[512], err[512] = "";
	int r = 0, f;

	*u = (struct undo){.saved = s->saved,
			   .nr = s->nr_saved,
			   .kprobe = (const char(*)[96])s->kprobe,
			   .nr_kprobes = s->nr_kprobes,
			   .legacy_kprobes = s->version == 1};
	/* the instance first (as pd_tfs_restore), and the rest even when it
	 * cannot be removed */
	if (s->instance[0] && (r = remove_instance(t, s->instance)))
		snprintf(err, sizeof(err), "cannot remove the leftover instance %s: %s",
			 s->instance, strerror(-r));
	decide(t, u, skipped, sizeof(skipped));
	f = put_back_all(t, u, r ? skipped : err, r ? sizeof(skipped) : sizeof(err));
	if (r || f) {
		snprintf(msg, msglen, "%s", err);
		return r ? r : f;
	}
	snprintf(msg, msglen,
		 "repaired a setup left by ptescoped pid %d: %d file(s) restored%s%s, %d kprobe "
		 "event(s) removed%s",
		 s->pid, u->restored, skipped[0] ? ", left as another tool set them: " : "",
		 skipped, u->removed, s->instance[0] ? ", instance removed" : "");
	return 0;
}

/* Repairs from the state file; its instance name in @inst. Returns the
 * number of things repaired or -errno, with @msg. */
static int repair_from_state(struct pd_tfs *t, const char *own, char *inst, size_t instlen,
			     char *msg, size_t msglen)
{
	struct pd_tfs_lock *other = NULL;
	struct pd_tfs_state s = {0};
	struct undo u;
	int r = pd_tfs_state_read(t->state, &s, msg, msglen);

	if (r)
		return r == -ENOENT ? (msg[0] = 0, 0) : r;
	snprintf(inst, instlen, "%s", s.instance);
	if (strcmp(s.boot, t->st.boot[0] ? t->st.boot : "-")) {
		/* saved before a reboot: tracefs has been fresh since */
		pd_tfs_state_clear(&s);
		unlink(t->state);
		snprintf(msg, msglen, "dropped the state file of an earlier boot");
		return 0;
	}
	if (pid_is_ptescoped(s.pid) && !kill(s.pid, 0)) {
		pd_tfs_state_clear(&s);
		snprintf(msg, msglen,
			 "tracefs is owned by ptescoped pid %d, still running (state file %s)", s.pid,
			 t->state);
		return -EBUSY;
	}
	/* an instance other than the caller's (a changed --instance): only
	 * with its lock, as nobody alive then uses it */
	if (s.instance[0] && own && strcmp(s.instance, own) && t->lock_dir[0]) {
		char what[100];

		snprintf(what, sizeof(what), "instance-%s", s.instance);
		if ((r = pd_tfs_lock_take(t->lock_dir, t->dir, what, &other, msg, msglen))) {
			pd_tfs_state_clear(&s);
			return r;
		}
	}
	/* its top-level files: only with the top level ours (nobody else uses it) */
	if (s.nr_saved && (r = take_top(t, msg, msglen))) {
		size_t n = strlen(msg);

		snprintf(msg + n, msglen - n,
			 "; the top-level files a dead ptescoped (pid %d) changed are repaired "
			 "once it is free (state file %s kept)",
			 s.pid, t->state);
		pd_tfs_lock_release(other);
		pd_tfs_state_clear(&s);
		return r;
	}
	r = undo_state(t, &s, &u, msg, msglen);
	pd_tfs_lock_release(other);
	pd_tfs_lock_release(t->top);
	t->top = NULL;
	if (!r)
		unlink(t->state); /* kept when something failed: tried again next time */
	pd_tfs_state_clear(&s);
	return r < 0 ? r : u.restored + u.removed + (inst[0] ? 1 : 0);
}

/* An instance of our name with no state file: ours, left by a run that died
 * young (the caller holds its lock). 1 when removed, 0 when there is none, or -errno. */
static int remove_leftover_instance(struct pd_tfs *t, const char *instance, char *msg,
				    size_t msglen)
{
	char rel[PATH_MAX];
	struct stat st;
	int r;

	if (!pd_tfs_instance_name_ok(instance))
		return 0;
	snprintf(rel, sizeof(rel), "instances/%s", instance);
	if (fstatat(t->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW))
		return 0;
	if ((r = remove_instance(t, instance))) {
		snprintf(msg, msglen, "cannot remove the leftover instance %s/%s: %s", t->dir, rel,
			 strerror(-r));
		return r;
	}
	snprintf(msg, msglen, "removed the leftover instance %s/%s", t->dir, rel);
	return 1;
}

int pd_tfs_repair(struct pd_tfs *t, const char *instance, char *msg, size_t msglen)
{
	char inst[80] = "";
	int repaired, r;

	msg[0] = 0;
	repaired = repair_from_state(t, instance, inst, sizeof(inst), msg, msglen);
	if (repaired < 0)
		return repaired;
	if (!instance || !strcmp(instance, inst))
		return repaired;
	r = remove_leftover_instance(t, instance, msg, msglen);
	return r < 0 ? r : repaired + r;
}

/* Whether events/GROUP/enable under @base (relative to the mount: "" or
 * "instances/NAME/") reads anything but "0". */
static bool group_enabled(const struct pd_tfs *t, const char *base, const char *group)
{
	char rel[PATH_MAX], buf[16];

	if ((size_t)snprintf(rel, sizeof(rel), "%sevents/%s/enable", base, group) >= sizeof(rel))
		return false;
	return read_rel(t, rel, buf, sizeof(buf)) > 0 && buf[0] != '0';
}

int pd_tfs_group_in_use(struct pd_tfs *t, const char *group, const char *own, bool remove,
			char *what, size_t len)
{
	char p[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int ret = 0;

	what[0] = 0;
	if (group_enabled(t, "", group)) {
		snprintf(what, len, "the top level has them enabled");
		return -EBUSY;
	}
	if ((size_t)snprintf(p, sizeof(p), "%s/instances", t->dir) >= sizeof(p) ||
	    !(d = opendir(p)))
		return 0;
	while ((e = readdir(d))) {
		char base[PATH_MAX];

		if (e->d_name[0] == '.' || (own && !strcmp(e->d_name, own)))
			continue;
		if ((size_t)snprintf(base, sizeof(base), "instances/%s/", e->d_name) >=
			sizeof(base) ||
		    !group_enabled(t, base, group))
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

/* Whether a set_event line names an event of a ptescope group. */
static bool ptescope_event(const char *line)
{
	size_t g = strlen(PD_KPROBE_GROUP);

	return !strncmp(line, PD_KPROBE_GROUP, g) && (line[g] == ':' || line[g] == '_');
}

int pd_tfs_check_top_free(struct pd_tfs *t, char *what, size_t len)
{
	static const char *const lists[] = {"set_graph_function", "set_ftrace_filter", "set_event"};
	char buf[4096];
	int n;

	what[0] = 0;
	if (read_rel(t, "current_tracer", buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = 0;
		if (strcmp(buf, "nop")) {
			snprintf(what, len, "current_tracer is '%s'", buf);
			return -EBUSY;
		}
	}
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		n = read_rel(t, lists[i], buf, sizeof(buf));
		if (n > 0 && ptescope_event(buf)) {
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
