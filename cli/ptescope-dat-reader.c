/* SPDX-License-Identifier: MIT */
/*
 * ptescope-dat-reader: the process that reads a trace.dat with libtracecmd on
 * behalf of ptescope and ptescoped (analyzer/dat_reader.c starts it), so that
 * a corrupt file can crash or hang this process, never theirs. Writes the
 * reader protocol to standard output; not meant to be run by hand.
 */
#include <stdio.h>
#include <unistd.h>

#include "dat_wire.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ptescope-dat-reader TRACE.dat (started by ptescope)\n");
		return 2;
	}
	/* only the protocol pipe and stderr: nothing of the parent's leaks in */
	close_range(3, ~0u, 0);
	return pt_dat_reader_main(argv[1], STDOUT_FILENO);
}
