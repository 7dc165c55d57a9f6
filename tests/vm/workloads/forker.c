/*
 * forker: touches N MiB of anonymous memory, then forks M times; the VM harness traces it.
 *
 * Fed by the scenario scripts of tests/vm (arguments below); feeds the ground truth of the
 * real-kernel fixtures: its pid, every child pid, the pages touched before each fork, how much of
 * that was backed by transparent huge pages, and the fork's wall time seen from the parent. The
 * buffer is 2 MiB aligned so it covers exactly N/2 PMDs (one copy pass each when THP is off).
 * Variants: THP off (MADV_NOHUGEPAGE) or on (MADV_HUGEPAGE), a multi-threaded parent, pinning to
 * one CPU (to share it with tests/vm/workloads/hog.c and force lock breaks), and fork, vfork or
 * clone3. Sized for a few MiB to a few hundred MiB and a handful of forks under qemu TCG.
 */
#include "gt.h"

#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 4096L
#define PMD_BYTES (2L << 20)

enum fork_kind { KIND_FORK, KIND_VFORK, KIND_CLONE3 };
static const char *const kind_names[] = {"fork", "vfork", "clone3"};

static int thread_release_fd[2];

static void *thread_main(void *arg)
{
	char c;

	(void)arg;
	gt_print("\"type\":\"thread\",\"parent_pid\":%d,\"tid\":%ld", (int)getpid(),
		 (long)syscall(SYS_gettid));
	/* Blocks until the parent is done forking: the threads exist but do not race the copy. */
	if (read(thread_release_fd[0], &c, 1) < 0)
		return NULL;
	return NULL;
}

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static pid_t do_fork(enum fork_kind kind)
{
	pid_t pid;

	switch (kind) {
	case KIND_VFORK:
		pid = vfork();
		if (pid == 0)
			_exit(0);
		return pid;
	case KIND_CLONE3: {
		struct clone_args args;

		memset(&args, 0, sizeof(args));
		args.exit_signal = SIGCHLD;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			syscall(SYS_exit_group, 0);
		return pid;
	}
	default:
		pid = fork();
		if (pid == 0)
			_exit(0);
		return pid;
	}
}

static void usage(void)
{
	fputs("usage: forker [--mib N] [--forks M] [--thp on|off] [--threads T] [--cpu C]\n"
	      "              [--nice N] [--kind fork|vfork|clone3] [--gap-ms MS]\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	long mib = 16, forks = 2, threads = 0, cpu = -1, nice_val = 0, gap_ms = 20;
	int thp_on = 0;
	enum fork_kind kind = KIND_FORK;
	pthread_t *tids = NULL;
	long pages, i;
	char *map, *buf;

	for (int a = 1; a < argc; a++) {
		const char *opt = argv[a];

		if (a + 1 >= argc)
			usage();
		if (!strcmp(opt, "--mib"))
			mib = gt_parse_long(opt, argv[++a], 0, 65536);
		else if (!strcmp(opt, "--forks"))
			forks = gt_parse_long(opt, argv[++a], 0, 1000000);
		else if (!strcmp(opt, "--threads"))
			threads = gt_parse_long(opt, argv[++a], 0, 256);
		else if (!strcmp(opt, "--cpu"))
			cpu = gt_parse_long(opt, argv[++a], 0, CPU_SETSIZE - 1);
		else if (!strcmp(opt, "--nice"))
			nice_val = gt_parse_long(opt, argv[++a], 0, 19);
		else if (!strcmp(opt, "--gap-ms"))
			gap_ms = gt_parse_long(opt, argv[++a], 0, 60000);
		else if (!strcmp(opt, "--thp")) {
			opt = argv[++a];
			if (!strcmp(opt, "on"))
				thp_on = 1;
			else if (strcmp(opt, "off"))
				usage();
		} else if (!strcmp(opt, "--kind")) {
			opt = argv[++a];
			if (!strcmp(opt, "vfork"))
				kind = KIND_VFORK;
			else if (!strcmp(opt, "clone3"))
				kind = KIND_CLONE3;
			else if (strcmp(opt, "fork"))
				usage();
		} else
			usage();
	}

	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			gt_die("sched_setaffinity");
	}
	if (nice_val && setpriority(PRIO_PROCESS, 0, (int)nice_val))
		gt_die("setpriority");
	gt_print("\"type\":\"start\",\"workload\":\"forker\",\"pid\":%d,\"comm\":\"forker\","
		 "\"mib\":%ld,\"forks\":%ld,\"thp\":\"%s\",\"threads\":%ld,\"cpu\":%ld,"
		 "\"nice\":%ld,\"kind\":\"%s\"",
		 (int)getpid(), mib, forks, thp_on ? "on" : "off", threads, cpu, nice_val,
		 kind_names[kind]);

	if (threads) {
		if (pipe(thread_release_fd))
			gt_die("pipe");
		tids = calloc((size_t)threads, sizeof(*tids));
		if (!tids)
			gt_die("calloc");
		for (i = 0; i < threads; i++) {
			errno = pthread_create(&tids[i], NULL, thread_main, NULL);
			if (errno)
				gt_die("pthread_create");
		}
		usleep(50000); /* let every thread print its tid before the first fork */
	}

	/* 2 MiB aligned so THP can back all of it and the buffer spans exactly mib/2 PMDs. */
	map = mmap(NULL, (size_t)(mib << 20) + PMD_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		gt_die("mmap");
	buf = (char *)(((uintptr_t)map + PMD_BYTES - 1) & ~(uintptr_t)(PMD_BYTES - 1));
	/* EINVAL: a kernel built without THP (the rt flavours): --thp off holds
	 * anyway, --thp on cannot (anon_huge_kb stays 0 in the ground truth) */
	if (mib && madvise(buf, (size_t)(mib << 20), thp_on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) &&
	    !(errno == EINVAL && !thp_on))
		gt_die("madvise");
	pages = (mib << 20) / PAGE_BYTES;
	for (i = 0; i < pages; i++)
		buf[i * PAGE_BYTES] = (char)(i | 1);
	gt_print("\"type\":\"touched\",\"pid\":%d,\"pages_touched\":%ld,\"buffer_pmds\":%ld,"
		 "\"anon_huge_kb\":%ld,\"rss_anon_kb\":%ld",
		 (int)getpid(), pages, (mib << 20) / PMD_BYTES, gt_smaps_kb("AnonHugePages"),
		 gt_smaps_kb("Anonymous"));

	for (i = 0; i < forks; i++) {
		long huge_kb = gt_smaps_kb("AnonHugePages"), anon_kb = gt_smaps_kb("Anonymous");
		long t0 = now_us(), t1;
		pid_t child = do_fork(kind);

		t1 = now_us();
		if (child < 0)
			gt_die(kind_names[kind]);
		gt_print("\"type\":\"fork\",\"kind\":\"%s\",\"seq\":%ld,\"parent_pid\":%d,"
			 "\"child_pid\":%d,\"pages_touched\":%ld,\"anon_huge_kb\":%ld,"
			 "\"rss_anon_kb\":%ld,\"fork_us\":%ld",
			 kind_names[kind], i, (int)getpid(), (int)child, pages, huge_kb, anon_kb,
			 t1 - t0);
		if (waitpid(child, NULL, 0) < 0)
			gt_die("waitpid");
		if (gap_ms)
			usleep((useconds_t)gap_ms * 1000);
	}

	if (threads) {
		close(thread_release_fd[1]);
		for (i = 0; i < threads; i++)
			pthread_join(tids[i], NULL);
		free(tids);
	}
	gt_print("\"type\":\"end\",\"pid\":%d", (int)getpid());
	return 0;
}
