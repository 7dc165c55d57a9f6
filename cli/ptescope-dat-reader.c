/* SPDX-License-Identifier: MIT */
/*
 * ptescope-dat-reader: the process that reads a trace.dat with libtracecmd on
 * behalf of ptescope and ptescoped (analyzer/dat_reader.c starts it), so that
 * a corrupt file can crash or hang this process, never theirs; with --text,
 * a text trace on its standard input (the daemon's uploads). Writes the
 * reader protocol to standard output; not meant to be run by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dat_wire.h"
#include "util.h"

/* A number in [lo, hi], or -1. */
static long arg_num(const char *s, long lo, long hi)
{
	long long v;

	return pt_parse_int(s, lo, hi, &v) ? -1 : (long)v;
}

int main(int argc, char **argv)
{
	struct dat_wire_part part;
	long k = -1, n = -1, m = -1;

	if (argc == 2 && !strcmp(argv[1], "--text")) {
		/* a text trace on standard input (the daemon's uploads) */
		close_range(3, ~0u, 0);
		return pt_text_reader_main(STDIN_FILENO, STDOUT_FILENO);
	}
	if (argc == 5) {
		n = arg_num(argv[3], 1, 1024);
		k = arg_num(argv[2], 0, n - 1);
		m = arg_num(argv[4], 1, 1 << 20);
	}
	if ((argc != 2 && argc != 5) || (argc == 5 && (k < 0 || n < 0 || m < 0))) {
		fprintf(stderr, "usage: ptescope-dat-reader TRACE.dat [PART PARTS CHUNKS] | --text "
				"(started by ptescope)\n");
		return 2;
	}
	/* only the protocol pipe and stderr: nothing of the parent's leaks in */
	close_range(3, ~0u, 0);
	part = (struct dat_wire_part){(uint32_t)k, (uint32_t)n, (uint32_t)m};
	return pt_dat_reader_main(argv[1], STDOUT_FILENO, argc == 5 ? &part : NULL);
}
