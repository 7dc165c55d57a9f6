/* SPDX-License-Identifier: MIT */
/*
 * forkn: makes exactly N forks (each child exits at once) and prints its own
 * pid and each child's pid, one per line ("parent P", "child C"), for the
 * live capture tests to compare with what ptescoped stored. With a second
 * argument S, it stays alive S more seconds, so that the daemon can read its
 * memory from /proc when it sees the forks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *end;
	long n;

	if (argc != 2 && argc != 3) {
		fputs("usage: forkn N [SECONDS]\n", stderr);
		return 2;
	}
	errno = 0;
	n = strtol(argv[1], &end, 10);
	if (errno || *end || n < 0 || n > 100000) {
		fputs("forkn: N must be 0..100000\n", stderr);
		return 2;
	}
	printf("parent %d\n", (int)getpid());
	fflush(stdout);
	for (long i = 0; i < n; i++) {
		pid_t c = fork();

		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (!c)
			_exit(0);
		printf("child %d\n", (int)c);
		if (waitpid(c, NULL, 0) < 0) {
			perror("waitpid");
			return 1;
		}
	}
	if (fflush(stdout))
		return 1;
	if (argc == 3)
		sleep((unsigned)strtoul(argv[2], NULL, 10) % 60);
	return 0;
}
