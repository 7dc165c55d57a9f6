/* SPDX-License-Identifier: MIT */
/*
 * The tracefs state file: its format, its atomic write and its validated
 * read (tfs_state.h).
 */
#include "tfs_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "ptescoped-tracefs-state "

void pd_tfs_state_clear(struct pd_tfs_state *s)
{
	for (size_t i = 0; i < s->nr_saved; i++) {
		free(s->saved[i].value);
		for (size_t k = 0; k < s->saved[i].nr_ours; k++)
			free(s->saved[i].ours[k]);
	}
	memset(s->saved, 0, sizeof(s->saved));
	s->nr_saved = 0;
	s->nr_kprobes = 0;
}

/* Whether @s[0..n) is 1 or more of [A-Za-z0-9_] (a tracefs event or system name). */
static bool ident(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

bool pd_tfs_rel_allowed(const char *rel)
{
	static const char *const exact[] = {
	    "tracing_on",	 "trace_clock",	       "buffer_size_kb",     "buffer_percent",
	    "current_tracer",	 "kprobe_events",      "set_ftrace_filter",  "set_ftrace_pid",
	    "set_graph_function", "set_ftrace_notrace", "set_graph_notrace", "set_event_pid",
	    "set_event",	 "events/enable"};
	const char *a, *b;

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(rel, exact[i]))
			return true;
	if (!strncmp(rel, "options/", 8)) {
		/* option names: lower case, digits, '-' and '_' */
		a = rel + 8;
		return *a && strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(a);
	}
	if (strncmp(rel, "events/", 7))
		return false;
	a = rel + 7; /* SYSTEM/enable or SYSTEM/EVENT/(enable|filter|trigger) */
	b = strchr(a, '/');
	if (!b || !ident(a, (size_t)(b - a)))
		return false;
	if (!strcmp(b + 1, "enable"))
		return true;
	a = b + 1;
	b = strchr(a, '/');
	return b && ident(a, (size_t)(b - a)) &&
	       (!strcmp(b + 1, "enable") || !strcmp(b + 1, "filter") || !strcmp(b + 1, "trigger"));
}

bool pd_tfs_instance_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n && n <= 64 && strcmp(name, ".") && strcmp(name, "..") &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") ==
		   n;
}

bool pd_tfs_kprobe_key_ok(const char *key)
{
	const char *sl = strchr(key, '/');

	if (!sl || strncmp(key, "ptescope", 8) || (sl != key + 8 && key[8] != '_'))
		return false;
	return ident(key, (size_t)(sl - key)) && ident(sl + 1, strlen(sl + 1));
}

static void hex_put(FILE *f, const char *s)
{
	if (!*s)
		fputc('-', f);
	for (; *s; s++)
		fprintf(f, "%02x", (unsigned char)*s);
}

static void put_lines(FILE *f, const struct pd_tfs_state *s)
{
	fprintf(f, MAGIC "2\nboot %s\npid %d\n", s->boot[0] ? s->boot : "-", s->pid);
	if (s->instance[0])
		fprintf(f, "instance %s\n", s->instance);
	for (size_t i = 0; i < s->nr_saved; i++) {
		const struct pd_tfs_saved *v = &s->saved[i];

		fprintf(f, "file %s ", v->rel);
		hex_put(f, v->value);
		fputc('\n', f);
		for (size_t k = 0; k < v->nr_ours; k++) {
			fprintf(f, "ours %s ", v->rel);
			hex_put(f, v->ours[k]);
			fputc('\n', f);
		}
		if (v->pending)
			fprintf(f, "pending %s\n", v->rel);
	}
	for (size_t i = 0; i < s->nr_kprobes; i++)
		fprintf(f, "kprobe %s\n", s->kprobe[i]);
}

int pd_tfs_state_write(const char *path, const struct pd_tfs_state *s)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	{
		/* its directory: ours alone (a run outside systemd's StateDirectory=) */
		char *sl = strrchr(tmp, '/');

		if (sl && sl != tmp) {
			*sl = 0;
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -errno;
			*sl = '/';
		}
	}
	if (unlink(tmp) && errno != ENOENT)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (!(f = fdopen(fd, "w"))) {
		ret = -errno;
		close(fd);
		unlink(tmp);
		return ret;
	}
	put_lines(f, s);
	if (fflush(f) || fsync(fd))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

/* ------------------------------------------------------------- reading */

static int unhex(const char *h, char *out, size_t outlen)
{
	size_t n = 0;

	if (!strcmp(h, "-")) {
		out[0] = 0;
		return 0;
	}
	for (; h[0] && h[1]; h += 2) {
		unsigned v;

		if (n + 1 >= outlen || sscanf(h, "%2x", &v) != 1 || !v)
			return -EINVAL;
		out[n++] = (char)v;
	}
	if (*h || !n)
		return -EINVAL;
	out[n] = 0;
	return 0;
}

/* Whether the file open as @fd at @path, and its directory, are ours alone. */
static int trusted(int fd, const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX], *sl;
	struct stat st, ds;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "the tracefs state file %s is not trusted (%s, owner uid %u, mode %04o; "
			 "it must be a file of uid %u, mode 0600): not repairing from it; check "
			 "what it is and remove it",
			 path, S_ISREG(st.st_mode) ? "a file" : "not a regular file",
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		return -EPERM;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	sl = strrchr(dir, '/');
	if (!sl)
		snprintf(dir, sizeof(dir), ".");
	else if (sl == dir)
		dir[1] = 0;
	else
		*sl = 0;
	if (stat(dir, &ds))
		return -errno;
	if ((ds.st_uid != geteuid() && ds.st_uid != 0) || (ds.st_mode & 022)) {
		snprintf(err, errlen,
			 "the tracefs state file %s is in %s, which others can write (owner uid "
			 "%u, mode %04o): not repairing from it; keep the state file in a "
			 "directory only root writes",
			 path, dir, (unsigned)ds.st_uid, (unsigned)(ds.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static struct pd_tfs_saved *saved_of(struct pd_tfs_state *s, const char *rel)
{
	for (size_t i = 0; i < s->nr_saved; i++)
		if (!strcmp(s->saved[i].rel, rel))
			return &s->saved[i];
	return NULL;
}

/* "file REL HEX" / "ours REL HEX": REL and the decoded value. */
static int rel_value(char *rest, const char **rel, char *buf, char *why, size_t len)
{
	char *sp = strchr(rest, ' ');

	if (!sp) {
		snprintf(why, len, "no value");
		return -EINVAL;
	}
	*sp = 0;
	*rel = rest;
	if (!pd_tfs_rel_allowed(rest) || strlen(rest) >= sizeof(((struct pd_tfs_saved *)0)->rel)) {
		snprintf(why, len, "'%.100s' is not a file ptescoped restores", rest);
		return -EINVAL;
	}
	if (unhex(sp + 1, buf, PD_TFS_MAX_VALUE)) {
		snprintf(why, len, "a bad value for %s", rest);
		return -EINVAL;
	}
	return 0;
}

static int add_file(struct pd_tfs_state *s, char *rest, char *buf, char *why, size_t len)
{
	const char *rel;
	int ret = rel_value(rest, &rel, buf, why, len);

	if (ret)
		return ret;
	if (saved_of(s, rel) || s->nr_saved == PD_TFS_MAX_SAVED) {
		snprintf(why, len, "%s saved twice or too many files", rel);
		return -EINVAL;
	}
	snprintf(s->saved[s->nr_saved].rel, sizeof(s->saved[0].rel), "%s", rel);
	if (!(s->saved[s->nr_saved].value = strdup(buf)))
		return -ENOMEM;
	/* version 1 recorded nothing of what it wrote: restore as before */
	s->saved[s->nr_saved++].pending = s->version == 1;
	return 0;
}

static int add_ours(struct pd_tfs_state *s, char *rest, char *buf, char *why, size_t len)
{
	struct pd_tfs_saved *v;
	const char *rel;
	int ret = rel_value(rest, &rel, buf, why, len);

	if (ret)
		return ret;
	if (!(v = saved_of(s, rel)) || v->nr_ours == PD_TFS_MAX_OURS) {
		snprintf(why, len, "ours %s before its file line, or too many", rel);
		return -EINVAL;
	}
	return (v->ours[v->nr_ours] = strdup(buf)) ? (v->nr_ours++, 0) : -ENOMEM;
}

/* One line after the magic. 0 or -errno with @why. */
static int parse_line(struct pd_tfs_state *s, char *line, char *buf, char *why, size_t len)
{
	struct pd_tfs_saved *v;

	if (!strncmp(line, "boot ", 5))
		snprintf(s->boot, sizeof(s->boot), "%s", line + 5);
	else if (!strncmp(line, "pid ", 4))
		s->pid = (int)strtol(line + 4, NULL, 10);
	else if (!strncmp(line, "instance ", 9)) {
		if (!pd_tfs_instance_name_ok(line + 9)) {
			snprintf(why, len, "'%.80s' is not an instance name", line + 9);
			return -EINVAL;
		}
		snprintf(s->instance, sizeof(s->instance), "%s", line + 9);
	} else if (!strncmp(line, "file ", 5))
		return add_file(s, line + 5, buf, why, len);
	else if (!strncmp(line, "ours ", 5) && s->version >= 2)
		return add_ours(s, line + 5, buf, why, len);
	else if (!strncmp(line, "pending ", 8) && s->version >= 2) {
		if (!(v = saved_of(s, line + 8))) {
			snprintf(why, len, "pending %.100s: not saved", line + 8);
			return -EINVAL;
		}
		v->pending = true;
	} else if (!strncmp(line, "kprobe ", 7) && s->version >= 2) {
		if (!pd_tfs_kprobe_key_ok(line + 7) || strlen(line + 7) >= sizeof(s->kprobe[0]) ||
		    s->nr_kprobes == PD_TFS_MAX_KPROBES) {
			snprintf(why, len, "'%.100s' is not a kprobe event of ours", line + 7);
			return -EINVAL;
		}
		snprintf(s->kprobe[s->nr_kprobes++], sizeof(s->kprobe[0]), "%s", line + 7);
	} else {
		snprintf(why, len, "an unknown line '%.60s'", line);
		return -EINVAL;
	}
	return 0;
}

static int parse(FILE *f, struct pd_tfs_state *s, char *why, size_t len)
{
	char *line = NULL, *buf = malloc(PD_TFS_MAX_VALUE);
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	if (getline(&line, &cap, f) < 0 || strncmp(line, MAGIC, strlen(MAGIC)) ||
	    ((s->version = atoi(line + strlen(MAGIC))) != 1 && s->version != 2)) {
		snprintf(why, len, "not a ptescoped state file of a version this build reads");
		ret = -EINVAL;
	}
	while (!ret && (n = getline(&line, &cap, f)) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (line[0])
			ret = parse_line(s, line, buf, why, len);
	}
	free(line);
	free(buf);
	return ret;
}

int pd_tfs_state_read(const char *path, struct pd_tfs_state *s, char *err, size_t errlen)
{
	char why[256] = "";
	FILE *f;
	int fd, ret;

	pd_tfs_state_clear(s);
	*s = (struct pd_tfs_state){0};
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP)
			snprintf(err, errlen,
				 "the tracefs state file %s is a symlink: not repairing from it; "
				 "check what it points to and remove it",
				 path);
		else if (ret != -ENOENT)
			snprintf(err, errlen, "cannot read the tracefs state file %s: %s", path,
				 strerror(errno));
		return ret == -ELOOP ? -EPERM : ret;
	}
	if ((ret = trusted(fd, path, err, errlen))) {
		close(fd);
		return ret;
	}
	if (!(f = fdopen(fd, "r"))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = parse(f, s, why, sizeof(why));
	fclose(f);
	if (ret) {
		snprintf(err, errlen,
			 "the tracefs state file %s is not valid (%s): not repairing from it; "
			 "check what it is and remove it",
			 path, why);
		pd_tfs_state_clear(s);
	}
	return ret;
}
