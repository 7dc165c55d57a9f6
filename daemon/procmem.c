/* SPDX-License-Identifier: MIT */
/*
 * The parent's memory from /proc (procmem.h): the parsing of status, maps and
 * smaps_rollup, a per-pid cache of readings and a budget of readings per
 * second.
 */
#include "procmem.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SLOTS 64
#define STATUS_MAX 8192

struct slot {
	int pid; /* 0: empty */
	char comm[32];
	uint64_t read_ns, smaps_ns; /* smaps_ns: when smaps_rollup may be read again */
	struct pt_parent_mem mem;
};

struct pd_procmem {
	char root[PATH_MAX];
	unsigned max_per_s;
	uint64_t reuse_ns, smaps_every_ns;
	int64_t smaps_max_rss;
	double tokens;
	uint64_t tokens_ns;
	/* the time budget: ns of reading left (refilled at max_read_ns_per_s,
	 * at most a second's worth; a long reading takes it below zero) */
	int64_t time_left_ns;
	uint64_t max_read_ns_per_s;
	uint64_t reads, skipped;
	struct slot cache[CACHE_SLOTS];
};

/* Reads at most @len - 1 bytes of @path into @buf (NUL-terminated). Returns bytes or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		ssize_t n = read(fd, buf + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return (ssize_t)got;
}

/*
 * Counts the lines of @path (maps: one per VMA). -errno on failure, and
 * -ETIMEDOUT when @deadline_ns (CLOCK_MONOTONIC, 0: none) passes before the
 * end: a count cut short would be wrong, so there is none. Each read() takes
 * the mmap lock, which a forking parent holds while dup_mmap copies its VMAs.
 */
static int64_t count_lines(const char *path, uint64_t deadline_ns)
{
	char buf[65536];
	int64_t lines = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			lines = -errno;
			break;
		}
		if (!n)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		if (deadline_ns && pt_mono_ns() >= deadline_ns) {
			lines = -ETIMEDOUT;
			break;
		}
	}
	close(fd);
	return lines;
}

/* The value of "Key:   N kB" in @text, in bytes; -1 when absent or malformed. */
static int64_t kb_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(p + klen + 1, &end, 10);
			if (errno || end == p + klen + 1 || v < 0 || v > INT64_MAX / 1024)
				return -1;
			return (int64_t)v * 1024;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* Whether status @text names the task @comm ("Name:\t<comm>\n"). */
static bool name_is(const char *text, const char *comm)
{
	const char *p = strstr(text, "Name:\t"), *end;

	if (!p)
		return false;
	p += 6;
	end = strchr(p, '\n');
	if (!end)
		return false;
	return (size_t)(end - p) == strlen(comm) && !strncmp(p, comm, (size_t)(end - p));
}

static void set(struct pt_parent_mem *m, enum pt_mem_field k, int64_t v)
{
	if (v >= 0)
		pt_mem_set(m, k, v);
}

/* 1 when the child's comm differs from @comm, 0 when equal, -1 unknown. */
static int child_execd(const char *root, int child_pid, const char *comm)
{
	char path[PATH_MAX], name[64];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%d/comm", root, child_pid);
	n = read_small(path, name, sizeof(name));
	if (n <= 0 || !comm[0])
		return -1;
	if (name[n - 1] == '\n')
		name[n - 1] = 0;
	return strcmp(name, comm) != 0;
}

int pd_procmem_read(const char *proc_root, int pid, const char *comm, int child_pid, bool with_maps,
		    int64_t smaps_max_rss_bytes, uint64_t deadline_ns, struct pt_parent_mem *out)
{
	char path[PATH_MAX], text[STATUS_MAX];
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
	n = read_small(path, text, sizeof(text));
	if (n < 0)
		return n == -ENOENT ? -ENOENT : (int)n;
	if (comm && comm[0] && !name_is(text, comm))
		return -ESRCH;
	set(out, PT_MEM_RSS_ANON, kb_field(text, "RssAnon"));
	set(out, PT_MEM_RSS_FILE, kb_field(text, "RssFile"));
	set(out, PT_MEM_RSS_SHMEM, kb_field(text, "RssShmem"));
	set(out, PT_MEM_PTE, kb_field(text, "VmPTE"));
	if (with_maps && (!deadline_ns || pt_mono_ns() < deadline_ns)) {
		snprintf(path, sizeof(path), "%s/%d/maps", proc_root, pid);
		set(out, PT_MEM_MAP_COUNT, count_lines(path, deadline_ns));
	}
	if (deadline_ns && pt_mono_ns() >= deadline_ns)
		smaps_max_rss_bytes = 0; /* one walk of every page table: not past the deadline */
	if (smaps_max_rss_bytes > 0 && pt_mem_has(out, PT_MEM_RSS_ANON) &&
	    out->v[PT_MEM_RSS_ANON] <= smaps_max_rss_bytes) {
		snprintf(path, sizeof(path), "%s/%d/smaps_rollup", proc_root, pid);
		if (read_small(path, text, sizeof(text)) > 0)
			set(out, PT_MEM_ANON_HUGE, kb_field(text, "AnonHugePages"));
	}
	if (child_pid > 0)
		set(out, PT_MEM_CHILD_EXEC, child_execd(proc_root, child_pid, comm ? comm : ""));
	return 0;
}

int pd_procmem_new(const struct pd_procmem_opts *o, struct pd_procmem **out)
{
	struct pd_procmem *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	snprintf(p->root, sizeof(p->root), "%s", o && o->proc_root ? o->proc_root : "/proc");
	p->max_per_s = o && o->max_reads_per_s ? o->max_reads_per_s : 50;
	p->reuse_ns = o && o->reuse_ns ? o->reuse_ns : 1000000000ull;
	p->smaps_every_ns = o && o->smaps_every_ns ? o->smaps_every_ns : 60000000000ull;
	p->smaps_max_rss = o && o->smaps_max_rss_bytes ? o->smaps_max_rss_bytes : 2LL << 30;
	p->tokens = p->max_per_s;
	p->max_read_ns_per_s = o && o->max_read_ns_per_s ? o->max_read_ns_per_s : 100 * 1000000ull;
	p->time_left_ns = (int64_t)p->max_read_ns_per_s;
	*out = p;
	return 0;
}

void pd_procmem_free(struct pd_procmem *p)
{
	free(p);
}

/*
 * Takes one reading from the budgets: readings (refilled at max_per_s) and
 * time spent reading (refilled at max_read_ns_per_s), each at most one
 * second's worth. False when either is spent.
 */
static bool take_token(struct pd_procmem *p, uint64_t now_ns)
{
	if (now_ns > p->tokens_ns) {
		uint64_t dt = now_ns - p->tokens_ns;
		int64_t refill = (int64_t)((double)dt * (double)p->max_read_ns_per_s / 1e9);

		p->tokens += (double)dt * p->max_per_s / 1e9;
		if (p->tokens > p->max_per_s)
			p->tokens = p->max_per_s;
		p->time_left_ns += refill;
		if (p->time_left_ns > (int64_t)p->max_read_ns_per_s)
			p->time_left_ns = (int64_t)p->max_read_ns_per_s;
	}
	p->tokens_ns = now_ns;
	if (p->tokens < 1 || p->time_left_ns <= 0)
		return false;
	p->tokens -= 1;
	return true;
}

/* @m with the fields @over knows taken from it. */
static void overlay(struct pt_parent_mem *m, const struct pt_parent_mem *over)
{
	for (int k = 0; k < PT_MEM_COUNT; k++)
		if (pt_mem_has(over, (enum pt_mem_field)k))
			set(m, (enum pt_mem_field)k, over->v[k]);
}

void pd_procmem_fill(struct pd_procmem *p, struct pt_fork *f, const struct pt_parent_mem *probed_mem,
		     uint64_t now_ns, uint64_t deadline_ns)
{
	/* what the capture read from the parent's mm_struct as the fork began
	 * (recon_site.c): it stands, and status and maps need not be read */
	const struct pt_parent_mem probe = probed_mem ? *probed_mem : (struct pt_parent_mem){0};
	bool probed = pt_mem_has(&probe, PT_MEM_RSS_ANON) && pt_mem_has(&probe, PT_MEM_MAP_COUNT);
	struct slot *s;
	uint64_t t0, spent;
	bool smaps;
	int ret = 0;

	memset(&f->mem, 0, sizeof(f->mem));
	if (!p || f->parent_pid <= 0) {
		f->mem = probe;
		return;
	}
	s = &p->cache[(unsigned)f->parent_pid % CACHE_SLOTS];
	if (s->pid == f->parent_pid && !strncmp(s->comm, f->parent_comm, sizeof(s->comm)) &&
	    now_ns - s->read_ns < p->reuse_ns) {
		f->mem = s->mem;
		f->mem.have &= ~(1u << PT_MEM_CHILD_EXEC); /* about another child */
		overlay(&f->mem, &probe);
		return;
	}
	if (!take_token(p, now_ns)) {
		p->skipped++;
		f->mem = probe;
		return;
	}
	p->reads++;
	if (s->pid != f->parent_pid || strncmp(s->comm, f->parent_comm, sizeof(s->comm))) {
		s->smaps_ns = 0;
		s->pid = 0;
	}
	smaps = !s->pid || now_ns >= s->smaps_ns;
	t0 = pt_mono_ns();
	if (probed && !smaps) {
		/* of /proc, only whether the child has exec'd */
		f->mem = probe;
		if (f->child_pid > 0)
			set(&f->mem, PT_MEM_CHILD_EXEC,
			    child_execd(p->root, f->child_pid, f->parent_comm));
	} else {
		ret = pd_procmem_read(p->root, f->parent_pid, f->parent_comm, f->child_pid, !probed,
				      smaps ? p->smaps_max_rss : 0, deadline_ns, &f->mem);
		if (ret)
			f->mem = probe; /* the parent gone (or another's pid): the fork's own reading */
		else
			overlay(&f->mem, &probe);
	}
	spent = pt_mono_ns() - t0;
	p->time_left_ns -= (int64_t)spent;
	if (ret) {
		s->pid = 0;
		return;
	}
	if (!smaps && pt_mem_has(&s->mem, PT_MEM_ANON_HUGE)) {
		/* smaps_rollup is dear: the last minute's THP figure stands */
		pt_mem_set(&f->mem, PT_MEM_ANON_HUGE, s->mem.v[PT_MEM_ANON_HUGE]);
	}
	if (smaps) /* the next walk: a minute on, or 1000 times what this reading took */
		s->smaps_ns =
		    now_ns + (spent * 1000 > p->smaps_every_ns ? spent * 1000 : p->smaps_every_ns);
	s->pid = f->parent_pid;
	memcpy(s->comm, f->parent_comm, sizeof(s->comm));
	s->read_ns = now_ns;
	s->mem = f->mem;
}

void pd_procmem_counts(const struct pd_procmem *p, uint64_t *reads, uint64_t *skipped)
{
	*reads = p ? p->reads : 0;
	*skipped = p ? p->skipped : 0;
}
