/* SPDX-License-Identifier: MIT */
/*
 * Trace readers: turn one input (a trace.dat file, function_graph text as the
 * kernel writes it, or `trace-cmd report` text) into pt_events (event.h),
 * in time order, handed to a pt_event_fn.
 *
 * The format is detected from the content, never from the file name.
 * Readers never print and never exit: failures come back as a negative errno
 * and a one-line message in the caller's buffer, naming what was wrong.
 */
#ifndef PTESCOPE_READER_H
#define PTESCOPE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum pt_format {
	PT_FMT_UNKNOWN = 0,
	PT_FMT_DAT,	     /* trace-cmd trace.dat, v6 or v7 */
	PT_FMT_TEXT,	     /* function_graph text (tracefs trace/trace_pipe) */
	PT_FMT_REPORT_TEXT,  /* trace-cmd report output */
};

/* "dat", "text", "report-text", "unknown". Static string. */
const char *pt_format_name(enum pt_format fmt);

/* Called now and then during a long read: bytes consumed of total (total 0 if unknown). */
typedef void (*pt_progress_fn)(uint64_t done, uint64_t total, void *ctx);

struct pt_read_opts {
	pt_progress_fn progress; /* may be NULL */
	void *progress_ctx;
	size_t max_line_bytes; /* text: longer lines are counted as unparsed and skipped;
				* 0 = default (1 MiB) */
};

/*
 * Sniffs the first bytes of @fd (which must be a regular file, or a pipe when
 * @head/@head_len are given by the caller). Sets *fmt. Returns 0, or
 * -EINVAL with a message in @err when the content is not a trace we read.
 */
int pt_detect_format(const unsigned char *head, size_t head_len, enum pt_format *fmt,
		     char *err, size_t errlen);

/*
 * Reads the text trace in @fd (function_graph text or trace-cmd report output)
 * to its end. Lines not understood are counted in st->unparsed_lines, not fatal.
 * Returns 0; -EINVAL with a message when no line of the input is a trace line;
 * the consumer's negative return when it stops the read; -errno on I/O errors.
 */
int pt_text_read_fd(int fd, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		    const struct pt_read_opts *opts, char *err, size_t errlen);

/* The same over a buffer in memory (tests, fuzzers). */
int pt_text_read_mem(const char *buf, size_t len, pt_event_fn fn, void *ctx,
		     struct pt_input_stats *st, const struct pt_read_opts *opts, char *err,
		     size_t errlen);

/*
 * Reads the trace.dat at @path through libtracecmd, every CPU merged by time,
 * in helper processes (see dat_reader.c) so that a corrupt file gives an
 * error rather than a crash or a hang here: one, or for a file of 4 MiB or
 * more one per online CPU but one (at most 8), each reading time slices of it
 * ($PTESCOPE_DAT_JOBS sets the number); the events are the same either way.
 * Returns 0 or a negative errno with a message in @err.
 */
int pt_dat_read(const char *path, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		const struct pt_read_opts *opts, char *err, size_t errlen);

/*
 * pt_text_read_fd in the trace.dat reader's helper process (dat_reader.c),
 * under its limits: the text trace in @fd (a regular file, read from its
 * current offset) goes to the helper's standard input; a crash, a limit or
 * a stall there is an error here (-EINVAL: the file's). @name names the
 * input in messages. The events and statistics are pt_text_read_fd's.
 * Returns 0 or a negative errno with a message in @err.
 */
int pt_text_read_helper(int fd, const char *name, pt_event_fn fn, void *ctx,
			struct pt_input_stats *st, const struct pt_read_opts *opts, char *err,
			size_t errlen);

/* Where the helper program is ($PTESCOPE_DAT_READER, beside the running
 * program, the build tree, libexec), or NULL. The result is @buf, the
 * environment's string or a static one. */
const char *pt_dat_reader_path(char *buf, size_t len);

#endif
