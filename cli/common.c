/* SPDX-License-Identifier: MIT */
/*
 * The pieces every `ptescope` subcommand uses (cli.h): the --format option
 * and writing the report to a file or standard output.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_parse_format(const char *arg, enum pt_report_format *fmt)
{
	if (!strcmp(arg, "text"))
		*fmt = PT_REPORT_TEXT;
	else if (!strcmp(arg, "json"))
		*fmt = PT_REPORT_JSON;
	else
		return -EINVAL;
	return 0;
}

int cli_parse_kinds(const char *cmd, const char *arg, unsigned *kinds)
{
	if (!pt_kinds_parse(arg, kinds))
		return 0;
	fprintf(stderr,
		"ptescope %s: --kind takes fork, thread, spawn, unknown or all, comma-separated, "
		"not '%s'\n",
		cmd, arg);
	return -EINVAL;
}

int cli_write_report(const char *cmd, const char *output, enum pt_report_format fmt,
		     unsigned kinds, const struct pt_report_input *inputs, size_t nr_inputs,
		     const struct pt_fork *forks, size_t nr_forks)
{
	FILE *out = stdout;
	int r;

	if (output && !(out = fopen(output, "we"))) {
		fprintf(stderr, "ptescope %s: %s: %s\n", cmd, output, strerror(errno));
		return EXIT_INPUT;
	}
	r = pt_report_write(out, fmt, kinds, inputs, nr_inputs, forks, nr_forks);
	if (out != stdout && fclose(out) && !r)
		r = -EIO;
	if (r) {
		fprintf(stderr, "ptescope %s: writing the report failed: %s\n", cmd, strerror(-r));
		return EXIT_INPUT;
	}
	return 0;
}
