/* SPDX-License-Identifier: MIT */
/*
 * The report: what `ptescope replay` and `ptescope report` print, as text for
 * people or JSON for programs. The JSON fork object is the one the HTTP API
 * serves too (docs/api.md), so it is built here, once.
 *
 * Fed the inputs' statistics and the fork records; writes to a FILE.
 */
#ifndef PTESCOPE_REPORT_H
#define PTESCOPE_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include "fork.h"
#include "reader.h"
#include "stats.h"

enum pt_report_format { PT_REPORT_TEXT, PT_REPORT_JSON };

struct pt_report_input {
	const char *path;
	enum pt_format format;
	struct pt_input_stats stats;
	size_t forks;	   /* forks found in it */
	const char *error; /* why it could not be read, or NULL */
	bool skipped;	   /* already stored (same content), not read again */
};

/* The fork object (docs/api.md). Returns a new reference, NULL on ENOMEM. */
json_t *pt_fork_json(const struct pt_fork *f);
/* The summary object of the JSON report. New reference, NULL on ENOMEM. */
json_t *pt_summary_json(const struct pt_summary *s);

/*
 * Writes the whole report. Forks are listed in the order given, every kind;
 * the summary is over the forks of @kinds (bits 1 << enum pt_fork_kind; 0:
 * address-space copies). Returns 0, -ENOMEM, or -EIO when writing failed.
 */
/*
 * A duration for people into @buf: "812 ns", "15.8 us", "3.21 ms", "1.52 s";
 * "-" for PT_NO_TIME. With @us_floor, under a microsecond is written in us
 * as well ("0.8 us"), as the doctor's text does. Returns @buf.
 */
const char *pt_format_ns(char *buf, size_t len, uint64_t ns, bool us_floor);

int pt_report_write(FILE *out, enum pt_report_format fmt, unsigned kinds,
		    const struct pt_report_input *inputs,
		    size_t nr_inputs, const struct pt_fork *forks, size_t nr_forks);

#endif
