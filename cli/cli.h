/* SPDX-License-Identifier: MIT */
/*
 * What the `ptescope` subcommands share: exit codes, the --format option and
 * the report output (a file or standard output). The front end is the one
 * layer that prints and picks exit codes; the libraries below it (analyzer/,
 * store/) leave a one-line message in a buffer instead.
 *
 * One file per subcommand: replay.c (traces -> report, optionally into a
 * database), report.c (database -> report); main.c dispatches.
 */
#ifndef PTESCOPE_CLI_H
#define PTESCOPE_CLI_H

#include <stddef.h>

#include "report.h"

#define EXIT_INPUT 1 /* an input, the database or the output could not be used */
#define EXIT_USAGE 2

/* `ptescope replay` and `ptescope report`: argv[0] is the subcommand; return the exit status. */
int cli_replay(int argc, char **argv);
int cli_report(int argc, char **argv);
/* `ptescope doctor` (doctor.c). */
int cli_doctor(int argc, char **argv);

/* The usage text of the whole command (main.c). */
extern const char cli_usage[];

/* --format: "text" or "json". Returns 0 or -EINVAL. */
int cli_parse_format(const char *arg, enum pt_report_format *fmt);

/* --kind LIST: the kinds the summary is over. 0, or -EINVAL after one error line. */
int cli_parse_kinds(const char *cmd, const char *arg, unsigned *kinds);

/*
 * Writes the report to @output (NULL: standard output). Prints the failure
 * as "ptescope CMD: ..." and returns EXIT_INPUT, or 0.
 */

int cli_write_report(const char *cmd, const char *output, enum pt_report_format fmt,
		     unsigned kinds,
		     const struct pt_report_input *inputs, size_t nr_inputs,
		     const struct pt_fork *forks, size_t nr_forks);

#endif
