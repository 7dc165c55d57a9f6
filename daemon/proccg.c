/* SPDX-License-Identifier: MIT */
/*
 * The parent's cgroup from /proc/PID/cgroup (proccg.h): a direct-mapped
 * table of recent readings by pid, each kept for a second.
 */
#include "proccg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"

#define SLOTS 256
#define REUSE_NS 1000000000ull
#define MAX_FILE 4096 /* a v1 host lists a dozen hierarchies */

struct reading {
	int pid; /* 0: empty */
	uint64_t at_ns;
	char path[PT_CGROUP_MAX];
};

struct pd_proccg {
	char root[256];
	uint64_t reads;
	struct reading slot[SLOTS];
};

int pd_proccg_new(const char *proc_root, struct pd_proccg **out)
{
	struct pd_proccg *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	snprintf(p->root, sizeof(p->root), "%s", proc_root ? proc_root : "/proc");
	*out = p;
	return 0;
}

void pd_proccg_free(struct pd_proccg *p)
{
	free(p);
}

uint64_t pd_proccg_reads(const struct pd_proccg *p)
{
	return p ? p->reads : 0;
}

/* The cgroup path of @pid into @out ("" when unknown). */
static void read_cgroup(struct pd_proccg *p, int pid, char *out, size_t len)
{
	char path[300], buf[MAX_FILE];
	ssize_t n = -1;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/%d/cgroup", p->root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	p->reads++;
	if (n <= 0)
		return;
	buf[n] = '\0';
	pt_cgroup_from_proc(buf, out, len);
}

void pd_proccg_fill(struct pd_proccg *p, struct pt_fork *f, uint64_t now_ns)
{
	struct reading *r;

	f->cgroup[0] = '\0';
	if (!p || f->parent_pid <= 0)
		return;
	r = &p->slot[(unsigned)f->parent_pid % SLOTS];
	if (r->pid != f->parent_pid || now_ns - r->at_ns > REUSE_NS) {
		r->pid = f->parent_pid;
		r->at_ns = now_ns;
		read_cgroup(p, f->parent_pid, r->path, sizeof(r->path));
	}
	memcpy(f->cgroup, r->path, sizeof(f->cgroup));
}
