/* SPDX-License-Identifier: MIT */
/*
 * The libtracecmd floor: open a trace.dat and iterate every record, doing
 * nothing with it. What no reader built on libtracecmd can beat; printed by
 * replay-bench next to trace-cmd report and ptescope replay.
 */
#include <stdio.h>
#include <time.h>

#include <trace-cmd/trace-cmd.h>

static long records;

static int count(struct tracecmd_input *h, struct tep_record *r, int cpu, void *d)
{
	(void)h, (void)r, (void)cpu, (void)d;
	records++;
	return 0;
}

int main(int argc, char **argv)
{
	struct tracecmd_input *h;

	if (argc != 2) {
		fprintf(stderr, "usage: floor TRACE.dat\n");
		return 2;
	}
	h = tracecmd_open(argv[1], TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!h) {
		fprintf(stderr, "floor: cannot open %s\n", argv[1]);
		return 1;
	}
	tracecmd_iterate_events(h, NULL, 0, count, NULL);
	tracecmd_close(h);
	printf("%ld\n", records);
	return 0;
}
