/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery on the running kernel (callsite_live.h): kallsyms, the
 * build id, the cache, the code read through one-shot kprobe events, then
 * callsite.c's rules.
 */
#include "callsite_live.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <traceevent/event-parse.h>
#include <tracefs/tracefs.h>

#include "btf.h"
#include "formats.h"
#include "ksyms.h"
#include "tfs.h"
#include "util.h"

/* 3: a pass end that cannot move back to its moves may move up (callsite.c
 * move_up); plans of 2 are discovered again */
#define CACHE_MAGIC "ptescope-callsite 3"
#define TEXT_EVENT "cpr_text"
#define ARG_BYTES 512	 /* x64[64]: the kernel's MAX_ARRAY_LEN */
#define ARGS_PER_EVENT 6 /* 3 KiB a record: 6.1 refuses a probe of 3.5 (E2BIG) */
#define MAX_TEXT_EVENTS ((PD_CS_MAX_TEXT / ARG_BYTES + ARGS_PER_EVENT - 1) / ARGS_PER_EVENT)

/* The call targets discovery resolves (also through their __pfx_ padding). */
static bool has_pfx(enum pd_cs_sym s)
{
	return s != PD_CS_MMLIST_LOCK && s != PD_CS_TEXT_START && s != PD_CS_TEXT_END;
}

/* ------------------------------------------------------------- kallsyms */

/* copy_page_range's address and extent and the symbols discovery needs. */
static int read_kallsyms(const char *path, struct pd_cs_input *in, char *why, size_t len)
{
	char pfx[PD_CS_NR_SYMS][64];
	const char *names[1 + 2 * PD_CS_NR_SYMS];
	int nr = 0, at[PD_CS_NR_SYMS], pat[PD_CS_NR_SYMS];
	struct pd_ksyms *k = NULL;
	uint64_t end;
	int ret;

	names[nr++] = "copy_page_range";
	for (int s = 0; s < PD_CS_NR_SYMS; s++) {
		at[s] = nr;
		names[nr++] = pd_cs_sym_name(s);
		pat[s] = -1;
		if (has_pfx(s)) {
			snprintf(pfx[s], sizeof(pfx[s]), "__pfx_%s", pd_cs_sym_name(s));
			pat[s] = nr;
			names[nr++] = pfx[s];
		}
	}
	if ((ret = pd_ksyms_load(path, PD_KSYMS_KALLSYMS, names, nr, &k, why, len)))
		return ret == -EPERM ? -ENOTSUP : ret;
	if (pd_ksyms_count(k, 0) != 1) {
		snprintf(why, len, "%s has %u copy_page_range symbols", path, pd_ksyms_count(k, 0));
		pd_ksyms_free(k);
		return -ENOTSUP;
	}
	in->addr = pd_ksyms_addr(k, 0);
	end = pd_ksyms_end(k, 0);
	for (int s = 0; s < PD_CS_NR_SYMS; s++) {
		/* a name twice (static functions in two files) is no call target we can trust */
		in->sym[s] = pd_ksyms_count(k, at[s]) == 1 ? pd_ksyms_addr(k, at[s]) : 0;
		in->pfx[s] =
		    pat[s] >= 0 && pd_ksyms_count(k, pat[s]) == 1 ? pd_ksyms_addr(k, pat[s]) : 0;
	}
	pd_ksyms_free(k);
	if (!in->addr || end <= in->addr || end - in->addr > PD_CS_MAX_TEXT) {
		snprintf(why, len, "copy_page_range's extent is not known from %s", path);
		return -ENOTSUP;
	}
	in->size = (size_t)(end - in->addr);
	return 0;
}

/* ------------------------------------------------------------- build id */

/* The GNU build id note of @path (/sys/kernel/notes: the kernel's ELF notes),
 * as hex in @out; "" when it has none. */
static void read_build_id(const char *path, char *out, size_t outlen)
{
	uint8_t buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	size_t off = 0;

	out[0] = 0;
	if (fd >= 0)
		close(fd);
	while (n > 0 && off + 12 <= (size_t)n) {
		uint32_t namesz, descsz, type;
		size_t name_off = off + 12, desc_off;

		memcpy(&namesz, buf + off, 4);
		memcpy(&descsz, buf + off + 4, 4);
		memcpy(&type, buf + off + 8, 4);
		desc_off = name_off + ((namesz + 3u) & ~3u);
		if (namesz > 64 || descsz > 64 || desc_off + descsz > (size_t)n)
			return;
		if (type == 3 && namesz == 4 && !memcmp(buf + name_off, "GNU", 4) &&
		    descsz * 2 < outlen) {
			for (uint32_t i = 0; i < descsz; i++)
				snprintf(out + 2 * i, 3, "%02x", buf[desc_off + i]);
			return;
		}
		off = desc_off + ((descsz + 3u) & ~3u);
	}
}

/* ---------------------------------------------------------------- cache */

static int cache_path(const struct pd_cs_live_opts *o, const char *build_id, char *p, size_t len)
{
	if (!o->cache_dir || !build_id[0])
		return -ENOENT;
	return (size_t)snprintf(p, len, "%s/callsite-%s.plan", o->cache_dir, build_id) < len
		   ? 0
		   : -ENAMETOOLONG;
}

/* Only what a fetch arg can be: no newline, no second probe smuggled in. */
static bool args_ok(const char *s)
{
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_=%:+-()[] x", *s))
			return false;
	return true;
}

bool pd_cs_cache_load(const char *p, struct pd_cs_found *want)
{
	struct pd_cs_plan *plan = &want->plan;
	char buf[4096], build[64] = "", shape[16] = "";
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	unsigned long size = 0, start = 0, end = 0, cstart = 0, cend = 0;
	ssize_t n = -1;
	char *line, *save = NULL;
	bool magic = false;

	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    !(st.st_mode & 022) && st.st_size < (off_t)sizeof(buf))
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	memset(plan, 0, sizeof(*plan));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, CACHE_MAGIC))
			magic = true;
		else if (!strncmp(line, "call_start_args ", 16))
			snprintf(plan->call_start_args, sizeof(plan->call_start_args), "%s",
				 line + 16);
		else if (!strncmp(line, "call_end_args ", 14))
			snprintf(plan->call_end_args, sizeof(plan->call_end_args), "%s", line + 14);
		else if (sscanf(line, "call_start %lx", &cstart) == 1 ||
			 sscanf(line, "call_end %lx", &cend) == 1)
			continue;
		else if (!strncmp(line, "start_args ", 11))
			snprintf(plan->start_args, sizeof(plan->start_args), "%s", line + 11);
		else if (!strncmp(line, "end_args ", 9))
			snprintf(plan->end_args, sizeof(plan->end_args), "%s", line + 9);
		else if (sscanf(line, "build %63s", build) == 1 ||
			 sscanf(line, "size %lu", &size) == 1 ||
			 sscanf(line, "shape %15s", shape) == 1 ||
			 sscanf(line, "start %lx", &start) == 1 ||
			 sscanf(line, "end %lx", &end) == 1)
			continue;
	}
	plan->shape = !strcmp(shape, "lock2")	  ? PD_CS_SHAPE_LOCK2
		      : !strcmp(shape, "maplock") ? PD_CS_SHAPE_MAPLOCK
						  : 0;
	plan->start_off = (uint32_t)start;
	plan->end_off = (uint32_t)end;
	plan->call_start_off = (uint32_t)cstart;
	plan->call_end_off = (uint32_t)cend;
	if (!want->text_size)
		want->text_size = size; /* not known before: the plan's own */
	return magic && !strcmp(build, want->build_id) && size == want->text_size && plan->shape &&
	       start && end && start < size && end < size && cstart && cend && cstart < size &&
	       cend < size && plan->end_args[0] && plan->call_end_args[0] &&
	       args_ok(plan->start_args) && args_ok(plan->end_args) &&
	       args_ok(plan->call_start_args) && args_ok(plan->call_end_args);
}

/* Written whole, then renamed: a crash leaves the old file or none. */
void pd_cs_cache_save(const char *p, const struct pd_cs_found *f)
{
	char tmp[PATH_MAX + 8];
	FILE *out;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", p) >= sizeof(tmp))
		return;
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return;
	if (!(out = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		return;
	}
	fprintf(out,
		CACHE_MAGIC "\nbuild %s\nsize %zu\nshape %s\nstart %x\nend %x\nstart_args %s\n"
			    "end_args %s\ncall_start %x\ncall_end %x\ncall_start_args %s\n"
			    "call_end_args %s\n",
		f->build_id, f->text_size, f->plan.shape == PD_CS_SHAPE_LOCK2 ? "lock2" : "maplock",
		f->plan.start_off, f->plan.end_off, f->plan.start_args, f->plan.end_args,
		f->plan.call_start_off, f->plan.call_end_off, f->plan.call_start_args,
		f->plan.call_end_args);
	if (fflush(out) || fsync(fd) || fclose(out) || rename(tmp, p))
		unlink(tmp);
}

/* ----------------------------------------------------------- the code */

/* The kernel's last complaint in tracefs's error_log ("... error: WHAT"),
 * for a refusal's reason; "" when it has none. */
static void kernel_error(const struct pd_tfs *t, char *out, size_t len)
{
	char buf[8192];
	const char *e = NULL, *p;
	int n = pd_tfs_read(t, "error_log", buf, sizeof(buf));

	out[0] = 0;
	if (n <= 0)
		return;
	for (p = buf; (p = strstr(p, "error: ")); p++)
		e = p;
	if (e)
		snprintf(out, len, " (the kernel: %.*s)", (int)strcspn(e + 7, "\n"), e + 7);
}

struct text_read {
	const char *group; /* the reading events' kprobe group */
	int ids[MAX_TEXT_EVENTS];
	int nev;
	bool got[MAX_TEXT_EVENTS];
	uint8_t *buf;
	size_t size;
};

static int text_record(struct tep_event *ev, struct tep_record *rec, int cpu, void *ctx)
{
	struct text_read *tr = ctx;

	(void)cpu;
	for (int e = 0; e < tr->nev; e++) {
		if (ev->id != tr->ids[e] || tr->got[e])
			continue;
		for (int a = 0; a < ARGS_PER_EVENT; a++) {
			int k = e * ARGS_PER_EVENT + a;
			size_t off = (size_t)k * ARG_BYTES, want;
			struct tep_format_field *f;
			char name[16];

			if (off >= tr->size)
				break;
			want = tr->size - off < ARG_BYTES ? tr->size - off : ARG_BYTES;
			snprintf(name, sizeof(name), "t%d", k);
			f = tep_find_field(ev, name);
			if (!f || f->offset < 0 || (size_t)f->size < want ||
			    (size_t)f->offset + want > (size_t)rec->size)
				return 0; /* not a record we understand: others may be */
			memcpy(tr->buf + off, (const char *)rec->data + f->offset, want);
		}
		tr->got[e] = true;
	}
	return 0;
}

/* Defines the reading events (kprobe_events, top level). 0 or -errno. */
static int define_text_events(struct pd_tfs *t, struct text_read *tr, char *why, size_t len)
{
	char line[1024], err[256];

	for (int e = 0; e < tr->nev; e++) {
		int n = snprintf(line, sizeof(line), "p:%s/" TEXT_EVENT "%d copy_page_range",
				 tr->group, e);

		for (int a = 0; a < ARGS_PER_EVENT; a++) {
			int k = e * ARGS_PER_EVENT + a;
			size_t off = (size_t)k * ARG_BYTES, left;

			if (off >= tr->size)
				break;
			left = tr->size - off;
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      " t%d=@copy_page_range+%zu:x64[%zu]", k, off,
				      left >= ARG_BYTES ? (size_t)ARG_BYTES / 8 : (left + 7) / 8);
		}
		snprintf(line + n, sizeof(line) - (size_t)n, "\n");
		if (pd_tfs_append(t, "kprobe_events", line, err, sizeof(err))) {
			kernel_error(t, line, sizeof(line));
			snprintf(why, len,
				 "the kernel refused a probe that reads copy_page_range's "
				 "code: %s%s",
				 err, line);
			return -ENOTSUP;
		}
	}
	return 0;
}

static void remove_text_events(struct pd_tfs *t, const struct text_read *tr)
{
	char line[128], err[256];

	for (int e = 0; e < tr->nev; e++) {
		snprintf(line, sizeof(line), "-:%s/" TEXT_EVENT "%d\n", tr->group, e);
		pd_tfs_append(t, "kprobe_events", line, err, sizeof(err));
	}
}

/* Arms the reading events in our instance for this thread, forks once, reads
 * what they recorded. */
static int record_text(struct pd_tfs *t, const char *instance, struct text_read *tr, char *why,
		       size_t len)
{
	const char *names[MAX_TEXT_EVENTS + 1];
	char evn[MAX_TEXT_EVENTS][64], rel[128], v[32], err[256];
	struct tep_handle *tep = NULL;
	struct tracefs_instance *ti = NULL;
	pid_t child;
	int ret, status;

	if ((ret = pd_tfs_use_instance(t, instance, why, len)))
		return ret;
	snprintf(v, sizeof(v), "common_pid == %ld", (long)syscall(SYS_gettid));
	for (int e = 0; e < tr->nev && !ret; e++) {
		snprintf(rel, sizeof(rel), "events/%s/" TEXT_EVENT "%d/filter", tr->group, e);
		ret = pd_tfs_write(t, rel, v, why, len);
		snprintf(rel, sizeof(rel), "events/%s/" TEXT_EVENT "%d/enable", tr->group, e);
		if (!ret)
			ret = pd_tfs_write(t, rel, "1", why, len);
	}
	if (ret)
		goto out;
	child = fork();
	if (child == 0)
		_exit(0);
	if (child < 0) {
		ret = -errno;
		snprintf(why, len, "cannot fork to read copy_page_range's code: %s",
			 strerror(errno));
		goto out;
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	for (int e = 0; e < tr->nev; e++) {
		snprintf(rel, sizeof(rel), "events/%s/" TEXT_EVENT "%d/enable", tr->group, e);
		pd_tfs_write(t, rel, "0", err, sizeof(err));
		snprintf(evn[e], sizeof(evn[e]), "%s/" TEXT_EVENT "%d", tr->group, e);
		names[e] = evn[e];
	}
	names[tr->nev] = NULL;
	if ((ret = pd_formats_load(pd_tfs_dir(t), names, &tep, why, len)))
		goto out;
	for (int e = 0; e < tr->nev; e++) {
		struct tep_event *ev =
		    tep_find_event_by_name(tep, tr->group, evn[e] + strlen(tr->group) + 1);

		tr->ids[e] = ev ? ev->id : -1;
	}
	if (!(ti = tracefs_instance_alloc(pd_tfs_dir(t), instance))) {
		ret = -ENOMEM;
		goto out;
	}
	tracefs_iterate_raw_events(tep, ti, NULL, 0, text_record, tr);
	for (int e = 0; e < tr->nev; e++)
		if (!tr->got[e]) {
			snprintf(why, len,
				 "the probes reading copy_page_range's code recorded "
				 "nothing when the daemon forked");
			ret = -ENOTSUP;
		}
out:
	tracefs_instance_free(ti);
	if (tep)
		tep_free(tep);
	pd_tfs_drop_instance(t, err, sizeof(err));
	return ret;
}

static int read_text(struct pd_tfs *t, const struct pd_cs_live_opts *o, uint8_t *buf, size_t size,
		     char *why, size_t len)
{
	struct text_read tr = {.group = o->group ? o->group : PD_KPROBE_GROUP,
			       .buf = buf,
			       .size = size};
	const char *instance = o->instance;
	int ret;

	tr.nev = (int)((size + ARG_BYTES * ARGS_PER_EVENT - 1) / (ARG_BYTES * ARGS_PER_EVENT));
	if (tr.nev > MAX_TEXT_EVENTS)
		return -E2BIG;
	ret = define_text_events(t, &tr, why, len);
	if (!ret)
		ret = record_text(t, instance, &tr, why, len);
	remove_text_events(t, &tr);
	return ret;
}

/* ------------------------------------------------------------------ all */

/* The map-and-lock function's `addr` parameter (1-based), 0 if unknown. */
static int maplock_addr_arg(const struct pd_cs_input *in, const struct pd_btf *b)
{
	char err[128];
	int pos = 0;

	if (!b)
		return 0;
	for (enum pd_cs_sym s = PD_CS_MAPLOCK_OLD; s <= PD_CS_MAPLOCK; s++)
		if (in->sym[s] &&
		    !pd_btf_param(b, pd_cs_sym_name(s), "addr", &pos, err, sizeof(err)))
			return pos;
	return 0;
}

int pd_cs_live_find(struct pd_tfs *t, const struct pd_cs_live_opts *o, struct pd_cs_found *out,
		    char *why, size_t len)
{
	static uint8_t text[PD_CS_MAX_TEXT];
	struct pd_cs_input in = {0};
	char cache[PATH_MAX];
	uint64_t t0;
	int ret;

	memset(out, 0, sizeof(out[0]));
	/* by build id first: a hit reads nothing else (a scan of /proc/kallsyms
	 * alone was 1.8 s of an icount guest's start) */
	read_build_id(o->notes ? o->notes : "/sys/kernel/notes", out->build_id,
		      sizeof(out->build_id));
	if (!cache_path(o, out->build_id, cache, sizeof(cache)) &&
	    pd_cs_cache_load(cache, out)) {
		out->cached = true;
		return 0;
	}
	if ((ret = read_kallsyms(o->kallsyms ? o->kallsyms : "/proc/kallsyms", &in, why, len)))
		return ret;
	out->text_size = in.size;
	t0 = pt_mono_ns();
	memset(text, 0, sizeof(text));
	if ((ret = read_text(t, o, text, in.size, why, len)))
		return ret;
	out->read_ms = (double)(pt_mono_ns() - t0) / 1e6;
	in.text = text;
	in.maplock_addr_arg = maplock_addr_arg(&in, o->btf);
	if ((ret = pd_cs_discover(&in, &out->plan, why, len)))
		return ret;
	if (!cache_path(o, out->build_id, cache, sizeof(cache)))
		pd_cs_cache_save(cache, out);
	return 0;
}
