/* SPDX-License-Identifier: MIT */
/*
 * cloner: makes clones of every kind, so that a capture's kinds can be
 * checked against what was done. In order: N fork()s (a copy of the address
 * space), N pthread_create()s (CLONE_VM | CLONE_THREAD; glibc uses clone3
 * from 2.34 on), N posix_spawn()s of SPAWN_PATH (glibc: CLONE_VM |
 * CLONE_VFORK, clone3 too; the parent waits for the child's exec) of
 * itself (the child runs `cloner --exit`, which exits at once) and N
 * vfork()s whose child exits at once. Each clone prints one ground-truth
 * line: {"type":"clone","kind":"fork|thread|spawn","parent_pid":P,
 * "parent_tid":T,"child_pid":C} (a thread's child_pid is its tid, as the
 * kernel's events name it). Then it stays alive a second, so that a daemon
 * can read its memory and cgroup from /proc.
 *
 * Usage: cloner [--n N] [--touch-mib M]
 * Sized for tens of clones; M MiB touched first make the forks' copies real.
 */
#include <pthread.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gt.h"

extern char **environ;

static pthread_mutex_t tid_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tid_cond = PTHREAD_COND_INITIALIZER;
static pid_t last_tid;

static void *thread_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&tid_lock);
	last_tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_signal(&tid_cond);
	pthread_mutex_unlock(&tid_lock);
	return NULL;
}

static void print_clone(const char *kind, pid_t child)
{
	gt_print("\"type\":\"clone\",\"kind\":\"%s\",\"parent_pid\":%d,\"parent_tid\":%d,"
		 "\"child_pid\":%d",
		 kind, (int)getpid(), (int)syscall(SYS_gettid), (int)child);
}

static void one_fork(void)
{
	pid_t c = fork();

	if (c < 0)
		gt_die("fork");
	if (!c)
		_exit(0);
	print_clone("fork", c);
	waitpid(c, NULL, 0);
}

static void one_thread(void)
{
	pthread_t t;
	pid_t tid;

	pthread_mutex_lock(&tid_lock);
	last_tid = 0;
	if ((errno = pthread_create(&t, NULL, thread_main, NULL)))
		gt_die("pthread_create");
	while (!last_tid)
		pthread_cond_wait(&tid_cond, &tid_lock);
	tid = last_tid;
	pthread_mutex_unlock(&tid_lock);
	pthread_join(t, NULL);
	print_clone("thread", tid);
}

static void one_spawn(const char *path)
{
	char *argv[] = {(char *)"cloner", (char *)"--exit", NULL};
	pid_t c;

	if ((errno = posix_spawn(&c, path, NULL, NULL, argv, environ)))
		gt_die("posix_spawn");
	print_clone("spawn", c);
	waitpid(c, NULL, 0);
}

static void one_vfork(void)
{
	pid_t c = vfork();

	if (c < 0)
		gt_die("vfork");
	if (!c)
		_exit(0);
	print_clone("spawn", c);
	waitpid(c, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *spawn_path = "/proc/self/exe";
	long n = 5, mib = 0;

	if (argc == 2 && !strcmp(argv[1], "--exit"))
		return 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = gt_parse_long("--n", argv[++i], 1, 1000);
		else if (!strcmp(argv[i], "--touch-mib") && i + 1 < argc)
			mib = gt_parse_long("--touch-mib", argv[++i], 0, 4096);
		else {
			fprintf(stderr, "usage: cloner [--n N] [--touch-mib M]\n");
			return 2;
		}
	}
	if (mib) {
		char *p = mmap(NULL, (size_t)mib << 20, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			gt_die("mmap");
		memset(p, 1, (size_t)mib << 20);
	}
	for (long i = 0; i < n; i++)
		one_fork();
	for (long i = 0; i < n; i++)
		one_thread();
	for (long i = 0; i < n; i++)
		one_spawn(spawn_path);
	for (long i = 0; i < n; i++)
		one_vfork();
	sleep(1);
	return 0;
}
