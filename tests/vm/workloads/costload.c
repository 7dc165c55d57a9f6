/*
 * costload: times small kernel operations in the VM guest, for tests/bench/vm-cost.
 *
 * Fed by the benchmark's guest script (a subcommand and its counts, below); feeds the benchmark
 * one `GT {"type":"cost",...}` line per repetition: the work's name, the operations timed and the
 * nanoseconds per operation (CLOCK_MONOTONIC around the whole repetition; for fork, around each
 * fork() call only, as the parent sees it). Each work exercises kernel paths a function_graph
 * filter may hook: pipe (wakeups, context switches), orc (VFS: open/read/close of a /tmp file),
 * fault (anonymous page faults and unmapping), spin (syscalls dense in spinlocks: eventfd, epoll,
 * timerfd, unix sockets, getrusage) and fork (copying the page tables of M MiB touched with THP
 * off). One untimed warm-up of an eighth of the operations comes first, then --settle-ms of
 * sleep: a tracing daemon handles the forks that started the work (the shell's, the pipe's echo
 * child) then rather than inside the timed repetitions. The defaults last about 50-200 ms per
 * repetition in the benchmark's guest (qemu -icount shift=3: 8 ns per instruction).
 */
#include "gt.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 4096L
#define FAULT_BYTES (1L << 20)
#define PMD_BYTES (2L << 20)

struct opts {
	const char *work;
	long ops;  /* operations per repetition; 0 = the work's default */
	long reps;     /* timed repetitions */
	long mib;      /* fork: memory touched before forking */
	long vmas;     /* fork: that many more mappings of 2 pages each */
	long settle_ms; /* a pause after setup and warm-up, before the timed repetitions */
};

static long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Writes all of buf or dies; the works move one byte or eight. */
static void xwrite(int fd, const void *buf, size_t n)
{
	if (write(fd, buf, n) != (ssize_t)n)
		gt_die("write");
}

static void xread(int fd, void *buf, size_t n)
{
	if (read(fd, buf, n) != (ssize_t)n)
		gt_die("read");
}

/* pipe: the parent sends a byte, the child echoes it back; an op is one round trip. */
static struct {
	int to_child[2], to_parent[2];
	pid_t child;
} pp;

static void pipe_setup(void)
{
	char c;

	if (pipe(pp.to_child) || pipe(pp.to_parent))
		gt_die("pipe");
	pp.child = fork();
	if (pp.child < 0)
		gt_die("fork");
	if (pp.child == 0) {
		close(pp.to_child[1]);
		close(pp.to_parent[0]);
		while (read(pp.to_child[0], &c, 1) == 1)
			xwrite(pp.to_parent[1], &c, 1);
		_exit(0);
	}
	close(pp.to_child[0]);
	close(pp.to_parent[1]);
}

static void pipe_ops(long n)
{
	char c = 'x';

	for (long i = 0; i < n; i++) {
		xwrite(pp.to_child[1], &c, 1);
		xread(pp.to_parent[0], &c, 1);
	}
}

static void pipe_teardown(void)
{
	close(pp.to_child[1]);
	close(pp.to_parent[0]);
	waitpid(pp.child, NULL, 0);
}

/* orc: open, read and close a small file in /tmp (tmpfs in the guest). */
static char orc_path[64];

static void orc_setup(void)
{
	char buf[512];
	int fd;

	snprintf(orc_path, sizeof(orc_path), "/tmp/costload-%d", (int)getpid());
	fd = open(orc_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		gt_die("open");
	memset(buf, 'o', sizeof(buf));
	xwrite(fd, buf, sizeof(buf));
	close(fd);
}

static void orc_ops(long n)
{
	char buf[512];

	for (long i = 0; i < n; i++) {
		int fd = open(orc_path, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			gt_die("open");
		xread(fd, buf, sizeof(buf));
		close(fd);
	}
}

static void orc_teardown(void)
{
	unlink(orc_path);
}

/* fault: map 1 MiB fresh, touch each page (256 faults), unmap; an op is one such cycle. */
static void fault_ops(long n)
{
	for (long i = 0; i < n; i++) {
		char *p = mmap(NULL, FAULT_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			gt_die("mmap");
		for (long off = 0; off < FAULT_BYTES; off += PAGE_BYTES)
			p[off] = 1;
		if (munmap(p, FAULT_BYTES))
			gt_die("munmap");
	}
}

/* spin: syscalls that take spinlocks many times each and sleep never; an op is one of each. */
static struct {
	int efd, epfd, tfd, sv[2];
} sp;

static void spin_setup(void)
{
	sp.efd = eventfd(0, EFD_CLOEXEC);
	sp.epfd = epoll_create1(EPOLL_CLOEXEC);
	sp.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (sp.efd < 0 || sp.epfd < 0 || sp.tfd < 0)
		gt_die("eventfd/epoll/timerfd");
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp.sv))
		gt_die("socketpair");
}

static void spin_ops(long n)
{
	struct itimerspec its = {.it_value = {.tv_sec = 3600}};
	struct epoll_event ev = {.events = EPOLLIN};
	struct rusage ru;
	uint64_t v = 1;
	char c = 's';

	for (long i = 0; i < n; i++) {
		xwrite(sp.efd, &v, sizeof(v));
		xread(sp.efd, &v, sizeof(v));
		if (epoll_ctl(sp.epfd, EPOLL_CTL_ADD, sp.efd, &ev) ||
		    epoll_ctl(sp.epfd, EPOLL_CTL_DEL, sp.efd, NULL))
			gt_die("epoll_ctl");
		if (timerfd_settime(sp.tfd, 0, &its, NULL))
			gt_die("timerfd_settime");
		if (send(sp.sv[0], &c, 1, 0) != 1 || recv(sp.sv[1], &c, 1, 0) != 1)
			gt_die("send/recv");
		if (getrusage(RUSAGE_SELF, &ru))
			gt_die("getrusage");
	}
}

static void spin_teardown(void)
{
	close(sp.efd);
	close(sp.epfd);
	close(sp.tfd);
	close(sp.sv[0]);
	close(sp.sv[1]);
}

/* fork: M MiB touched once with THP off (one PTE per page to copy), then fork + waitpid. */
static char *fork_buf;
static long fork_ns; /* time inside fork() of the last fork_ops() call */

static void fork_setup(long mib)
{
	long pages = (mib << 20) / PAGE_BYTES;
	char *map = mmap(NULL, (size_t)(mib << 20) + PMD_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED)
		gt_die("mmap");
	fork_buf = (char *)(((uintptr_t)map + PMD_BYTES - 1) & ~(uintptr_t)(PMD_BYTES - 1));
	if (mib && madvise(fork_buf, (size_t)(mib << 20), MADV_NOHUGEPAGE))
		gt_die("madvise");
	for (long i = 0; i < pages; i++)
		fork_buf[i * PAGE_BYTES] = (char)(i | 1);
}

/*
 * --vmas N: N more private anonymous mappings of 2 pages, their protections
 * alternating so that none merges with the next: the writable ones written
 * (an anon_vma, two PTEs for the fork to copy), the read-only ones read (the
 * zero page: nothing to copy), as a process's many small mappings are.
 */
static void vmas_setup(long n)
{
	for (long i = 0; i < n; i++) {
		int prot = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
		volatile char *m = mmap(NULL, 2 * PAGE_BYTES, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			gt_die("mmap");
		for (int pg = 0; pg < 2; pg++) {
			if (prot & PROT_WRITE)
				m[pg * PAGE_BYTES] = 1;
			else
				(void)m[pg * PAGE_BYTES];
		}
	}
}

static void fork_ops(long n)
{
	fork_ns = 0;
	for (long i = 0; i < n; i++) {
		long t0 = now_ns();
		pid_t child = fork();

		if (child == 0)
			_exit(0);
		fork_ns += now_ns() - t0;
		if (child < 0)
			gt_die("fork");
		if (waitpid(child, NULL, 0) < 0)
			gt_die("waitpid");
	}
}

/*
 * forkpipe: a fork of M MiB (as fork), then at once PIPE_AFTER_FORK pipe round trips (as pipe,
 * about 260 ms in the benchmark's guest: longer than the daemon's idle tick, so its wake-up to
 * read and store that fork lands inside); an op is one fork and its round trips, and the time is
 * the round trips' alone, per round trip: what a tracing daemon's work after a fork costs the
 * work that runs next on the same CPU.
 */
#define PIPE_AFTER_FORK 2500
static long forkpipe_ns; /* the round trips of the last forkpipe_ops() call */

static void forkpipe_ops(long n)
{
	forkpipe_ns = 0;
	for (long i = 0; i < n; i++) {
		pid_t child = fork();
		long t0;

		if (child == 0)
			_exit(0);
		if (child < 0)
			gt_die("fork");
		if (waitpid(child, NULL, 0) < 0)
			gt_die("waitpid");
		t0 = now_ns();
		pipe_ops(PIPE_AFTER_FORK);
		forkpipe_ns += now_ns() - t0;
	}
}

struct work {
	const char *name;
	long default_ops;
	void (*setup)(void);
	void (*ops)(long n);
	void (*teardown)(void);
};

static const struct work works[] = {
    {"pipe", 1000, pipe_setup, pipe_ops, pipe_teardown},
    {"orc", 2000, orc_setup, orc_ops, orc_teardown},
    {"fault", 16, NULL, fault_ops, NULL},
    {"spin", 800, spin_setup, spin_ops, spin_teardown},
    {"fork", 0, NULL, fork_ops, NULL},
    {"forkpipe", 1, pipe_setup, forkpipe_ops, pipe_teardown},
};

/* Forks of more memory take longer: about 100 ms of forking per repetition, at least one. */
static long fork_default_ops(long mib)
{
	return mib >= 256 ? 1 : 256 / (mib > 4 ? mib : 4);
}

static void usage(void)
{
	fputs("usage: costload pipe|orc|fault|spin [--ops N] [--reps R] [--settle-ms MS]\n"
	      "       costload fork|forkpipe --mib M [--vmas N] [--ops FORKS] [--reps R] "
	      "[--settle-ms MS]\n",
	      stderr);
	exit(2);
}

static const struct work *parse(int argc, char **argv, struct opts *o)
{
	const struct work *w = NULL;

	if (argc < 2)
		usage();
	for (size_t i = 0; i < sizeof(works) / sizeof(works[0]); i++)
		if (!strcmp(argv[1], works[i].name))
			w = &works[i];
	if (!w)
		usage();
	*o = (struct opts){.work = w->name, .ops = 0, .reps = 5, .mib = 64};
	for (int a = 2; a < argc; a++) {
		const char *opt = argv[a];

		if (a + 1 >= argc)
			usage();
		if (!strcmp(opt, "--ops"))
			o->ops = gt_parse_long(opt, argv[++a], 1, 100000000);
		else if (!strcmp(opt, "--reps"))
			o->reps = gt_parse_long(opt, argv[++a], 1, 10000);
		else if (!strcmp(opt, "--mib"))
			o->mib = gt_parse_long(opt, argv[++a], 0, 65536);
		else if (!strcmp(opt, "--vmas"))
			o->vmas = gt_parse_long(opt, argv[++a], 0, 60000);
		else if (!strcmp(opt, "--settle-ms"))
			o->settle_ms = gt_parse_long(opt, argv[++a], 0, 60000);
		else
			usage();
	}
	if (!o->ops)
		o->ops = w->ops == fork_ops ? fork_default_ops(o->mib) : w->default_ops;
	return w;
}

int main(int argc, char **argv)
{
	struct opts o;
	const struct work *w = parse(argc, argv, &o);
	int is_fork = w->ops == fork_ops, is_forkpipe = w->ops == forkpipe_ops;
	long warmup = o.ops / 8 ? o.ops / 8 : 1;

	gt_print("\"type\":\"start\",\"workload\":\"costload\",\"pid\":%d,\"comm\":\"costload\","
		 "\"work\":\"%s\",\"ops\":%ld,\"reps\":%ld,\"mib\":%ld",
		 (int)getpid(), o.work, o.ops, o.reps, is_fork || is_forkpipe ? o.mib : 0L);
	if (is_fork || is_forkpipe) {
		fork_setup(o.mib);
		vmas_setup(o.vmas);
	}
	if (w->setup)
		w->setup();
	w->ops(warmup);
	if (o.settle_ms)
		usleep((useconds_t)o.settle_ms * 1000);
	for (long r = 0; r < o.reps; r++) {
		long t0 = now_ns(), ns, timed = o.ops;

		w->ops(o.ops);
		ns = is_fork ? fork_ns : is_forkpipe ? forkpipe_ns : now_ns() - t0;
		if (is_forkpipe)
			timed = o.ops * PIPE_AFTER_FORK; /* per round trip */
		gt_print("\"type\":\"cost\",\"work\":\"%s\",\"rep\":%ld,\"ops\":%ld,\"mib\":%ld,"
			 "\"ns\":%ld,\"ns_per_op\":%.1f",
			 o.work, r, timed, is_fork || is_forkpipe ? o.mib : 0L, ns,
			 (double)ns / (double)timed);
	}
	if (w->teardown)
		w->teardown();
	gt_print("\"type\":\"end\",\"pid\":%d,\"ops_total\":%ld", (int)getpid(),
		 warmup + o.reps * o.ops);
	return 0;
}
