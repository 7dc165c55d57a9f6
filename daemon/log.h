/* SPDX-License-Identifier: MIT */
/*
 * ptescoped's logging: one line per message, with a level, to stderr. Under
 * systemd (JOURNAL_STREAM names our stderr) each line starts with the
 * syslog priority prefix "<N>" that journald turns into the entry's
 * priority; elsewhere lines read "ptescoped: LEVEL: message". Messages are
 * written escaped: control characters, bytes that are not UTF-8 and
 * backslashes as in analyzer/escape.h ("\x0a", "\xff", "\\").
 *
 * The threshold is the one piece of process-wide state outside the main:
 * every layer that decides (main, capture loop, replay worker) logs through
 * here; library code (analyzer/, store/) never logs.
 */
#ifndef PTESCOPED_LOG_H
#define PTESCOPED_LOG_H

#include <stdbool.h>

enum pd_log_level {
	PD_LOG_ERR = 3,
	PD_LOG_WARN = 4,
	PD_LOG_NOTICE = 5,
	PD_LOG_INFO = 6,
	PD_LOG_DEBUG = 7,
};

/* Parses "error", "warning", "notice", "info", "debug". 0 or -EINVAL. */
int pd_log_parse_level(const char *s, enum pd_log_level *out);
const char *pd_log_level_name(enum pd_log_level l);

/* Messages above @l are dropped. Thread-safe (an atomic). */
void pd_log_set_level(enum pd_log_level l);
bool pd_log_enabled(enum pd_log_level l);

/* Writes one line (no trailing newline in @fmt). Thread-safe: one write(2) per line. */
void pd_log(enum pd_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pd_err(...) pd_log(PD_LOG_ERR, __VA_ARGS__)
#define pd_warn(...) pd_log(PD_LOG_WARN, __VA_ARGS__)
#define pd_notice(...) pd_log(PD_LOG_NOTICE, __VA_ARGS__)
#define pd_info(...) pd_log(PD_LOG_INFO, __VA_ARGS__)
#define pd_debug(...) pd_log(PD_LOG_DEBUG, __VA_ARGS__)

#endif
