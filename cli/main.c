/* SPDX-License-Identifier: MIT */
/*
 * ptescope: measure what fork() costs from ftrace function_graph recordings.
 * `ptescope replay TRACE...` reads trace files (format detected from
 * content), rebuilds every fork and prints a report, optionally storing the
 * forks in a database; `ptescope report --db FILE` reports from a database.
 *
 * This file dispatches to the subcommands (one file each, cli.h). Exit
 * codes: 0 success, 1 an input or the database could not be read, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_usage[] =
    "Usage: ptescope COMMAND [OPTION]...\n"
    "Measure what fork() costs, from ftrace function_graph recordings.\n"
    "\n"
    "Commands:\n"
    "  replay [OPTION]... TRACE...   analyse trace files (trace.dat v6/v7, function_graph\n"
    "                                text, trace-cmd report output) and print a report\n"
    "  report --db FILE [OPTION]...  report on forks stored in a database\n"
    "  doctor (--db FILE | TRACE...)  why forks are slow, per process, and what to do\n"
    "\n"
    "replay options:\n"
    "  -f, --format text|json   report format (default text)\n"
    "  -o, --output FILE        write the report to FILE instead of standard output\n"
    "  --kind LIST              the summary over these kinds of clone: fork (default: a\n"
    "                           copy of the address space), thread, spawn, unknown, all\n"
    "      --db FILE            also store the forks in the SQLite database FILE\n"
    "      --retention-days N   with --db: then delete forks stored more than N days ago\n"
    "      --max-db-mb N        with --db: then delete the oldest forks until the data fits\n"
    "                           in N MiB\n"
    "      --db-sync normal|full  with --db: full also survives a power cut (slower)\n"
    "  -q, --quiet              no progress indicator\n"
    "\n"
    "report options:\n"
    "      --db FILE            the database (required)\n"
    "  -f, --format text|json   report format (default text)\n"
    "      --comm NAME          only forks by processes named NAME\n"
    "      --since T, --until T only forks in this time range\n"
    "\n"
    "doctor options: --db FILE, --comm, --since, --until (as report), --slow-us N,\n"
    "  --max-procs N, --kind LIST, -f text|json, -o FILE; see 'ptescope doctor --help'\n"
    "\n"
    "  -h, --help               show this help\n"
    "  -V, --version            show the version\n"
    "\n"
    "Exit status: 0 success, 1 an input could not be read, 2 usage error.\n"
    "Documentation: docs/ in the source tree; the fork object is described in docs/api.md.\n";

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		fputs(cli_usage, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("ptescope %s\n", PTESCOPE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "replay"))
		return cli_replay(argc - 1, argv + 1);
	if (!strcmp(cmd, "report"))
		return cli_report(argc - 1, argv + 1);
	if (!strcmp(cmd, "doctor"))
		return cli_doctor(argc - 1, argv + 1);
	fprintf(stderr, "ptescope: unknown command '%s' (try 'ptescope --help')\n", cmd);
	return EXIT_USAGE;
}
