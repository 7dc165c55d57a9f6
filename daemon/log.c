/* SPDX-License-Identifier: MIT */
/*
 * Level-filtered one-line logging to stderr, journald-aware (see log.h).
 * Each line is formatted into a bounded stack buffer and written with one
 * write(2), so lines of concurrent threads never interleave. The message is
 * escaped (analyzer/escape.h, control characters too): a string from a
 * client can neither forge a line nor send terminal escapes.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"

static const char *const level_names[] = {
	[PD_LOG_ERR] = "error", [PD_LOG_WARN] = "warning", [PD_LOG_NOTICE] = "notice",
	[PD_LOG_INFO] = "info", [PD_LOG_DEBUG] = "debug",
};

/* The threshold: process-wide by nature (log.h explains why it is not passed around). */
static _Atomic int log_threshold = PD_LOG_INFO;
/* -1: not decided yet, 0: plain stderr, 1: stderr is the journal */
static _Atomic int log_journal = -1;

int pd_log_parse_level(const char *s, enum pd_log_level *out)
{
	for (int l = PD_LOG_ERR; l <= PD_LOG_DEBUG; l++) {
		if (!strcmp(s, level_names[l])) {
			*out = (enum pd_log_level)l;
			return 0;
		}
	}
	if (!strcmp(s, "err")) {
		*out = PD_LOG_ERR;
		return 0;
	}
	if (!strcmp(s, "warn")) {
		*out = PD_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

const char *pd_log_level_name(enum pd_log_level l)
{
	return l >= PD_LOG_ERR && l <= PD_LOG_DEBUG ? level_names[l] : "?";
}

void pd_log_set_level(enum pd_log_level l)
{
	atomic_store(&log_threshold, (int)l);
}

bool pd_log_enabled(enum pd_log_level l)
{
	return (int)l <= atomic_load(&log_threshold);
}

static bool stderr_is_journal(void)
{
	int j = atomic_load(&log_journal);

	if (j < 0) {
		/* JOURNAL_STREAM is "DEV:INO" of the stream systemd connected stderr to */
		const char *js = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat sb;

		j = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(STDERR_FILENO, &sb) &&
		    (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
		atomic_store(&log_journal, j);
	}
	return j == 1;
}

void pd_log(enum pd_log_level l, const char *fmt, ...)
{
	char msg[2048], line[PT_ESC_SIZE(sizeof(msg)) + 32];
	int saved = errno, n;
	size_t len;
	va_list ap;

	if (!pd_log_enabled(l))
		return;
	if (stderr_is_journal())
		n = snprintf(line, sizeof(line), "<%d>", (int)l);
	else
		n = snprintf(line, sizeof(line), "ptescoped: %s: ", pd_log_level_name(l));
	if (n < 0)
		n = 0;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = 0;
	va_end(ap);
	/* Client strings (upload names, paths, comms) cannot end the line or drive a terminal. */
	pt_escape(msg, PT_ESC_CONTROL, line + n, sizeof(line) - (size_t)n - 1);
	len = strlen(line);
	line[len++] = '\n';
	(void)!write(STDERR_FILENO, line, len);
	errno = saved;
}
