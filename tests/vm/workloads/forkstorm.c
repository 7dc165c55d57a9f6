/*
 * forkstorm: makes thousands of small forks in a row (each child exits at once).
 *
 * Fed by the VM scenario scripts; feeds ground truth for the "many small forks" case: its pid and
 * every child pid, one GT line each, so a replay can be checked fork by fork. The process is
 * small (a static binary with a few touched pages), so each fork copies a handful of PTEs and the
 * trace is dominated by per-fork overhead: sized for up to a few thousand forks under qemu TCG.
 */
#include "gt.h"

#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long forks = 1000, i;

	if (argc == 3 && !strcmp(argv[1], "--forks"))
		forks = gt_parse_long(argv[1], argv[2], 0, 1000000);
	else if (argc != 1) {
		fputs("usage: forkstorm [--forks N]\n", stderr);
		return 2;
	}
	gt_print("\"type\":\"start\",\"workload\":\"forkstorm\",\"pid\":%d,\"comm\":\"forkstorm\","
		 "\"forks\":%ld",
		 (int)getpid(), forks);
	for (i = 0; i < forks; i++) {
		pid_t child = fork();

		if (child < 0)
			gt_die("fork");
		if (child == 0)
			_exit(0);
		gt_print("\"type\":\"fork\",\"kind\":\"fork\",\"seq\":%ld,\"parent_pid\":%d,"
			 "\"child_pid\":%d",
			 i, (int)getpid(), (int)child);
		if (waitpid(child, NULL, 0) < 0)
			gt_die("waitpid");
	}
	gt_print("\"type\":\"end\",\"pid\":%d", (int)getpid());
	return 0;
}
