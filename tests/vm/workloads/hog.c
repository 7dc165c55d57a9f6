/*
 * hog: a busy loop pinned to one CPU, to share that CPU with a forking process.
 *
 * Fed by the VM scenario scripts (started in the background before forker --cpu C); feeds the
 * "forced lock breaks" recordings: while the hog is runnable on the same CPU, the scheduler tick
 * sets need_resched on the forking task, and copy_pte_range's progress check drops the PTE locks
 * and reschedules in the middle of a PMD (see docs/kernel-notes "The seed question, observed").
 * With --sleep-us N it naps N us after every --spin-us M us of spinning: each wake-up on the shared
 * CPU preempts the forking task too, which forces breaks even in forks shorter than a tick.
 * Runs for --seconds S (default 60) or until killed.
 */
#include "gt.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	long cpu = 0, seconds = 60, spin_us = 0, sleep_us = 0;
	volatile unsigned long spins = 0;
	cpu_set_t set;
	time_t end;

	for (int a = 1; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--cpu"))
			cpu = gt_parse_long(argv[a], argv[a + 1], 0, CPU_SETSIZE - 1);
		else if (!strcmp(argv[a], "--seconds"))
			seconds = gt_parse_long(argv[a], argv[a + 1], 1, 86400);
		else if (!strcmp(argv[a], "--spin-us"))
			spin_us = gt_parse_long(argv[a], argv[a + 1], 0, 10000000);
		else if (!strcmp(argv[a], "--sleep-us"))
			sleep_us = gt_parse_long(argv[a], argv[a + 1], 0, 10000000);
		else {
			fputs("usage: hog [--cpu C] [--seconds S] [--spin-us M --sleep-us N]\n", stderr);
			return 2;
		}
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		gt_die("sched_setaffinity");
	gt_print("\"type\":\"hog\",\"pid\":%d,\"cpu\":%ld,\"spin_us\":%ld,\"sleep_us\":%ld",
		 (int)getpid(), cpu, spin_us, sleep_us);
	end = time(NULL) + seconds;
	while (time(NULL) < end) {
		if (!sleep_us) {
			for (int i = 0; i < 100000; i++)
				spins++;
			continue;
		}
		for (long t0 = now_us(); now_us() - t0 < spin_us;)
			spins++;
		usleep((useconds_t)sleep_us);
	}
	return 0;
}
