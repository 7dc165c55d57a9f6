/* SPDX-License-Identifier: MIT */
/*
 * The one escape for strings that come from outside ptescope (process names,
 * upload names, trace paths) wherever they are shown: JSON answers and
 * reports, the daemon's log. Bytes are kept exact everywhere else (the store,
 * filters); only their display is escaped, one way:
 *
 *   - a backslash is written "\\";
 *   - a byte that is not part of valid UTF-8 is written "\xHH" (lowercase hex);
 *   - with PT_ESC_CONTROL (logs), control characters too (C0, DEL, C1) as
 *     "\xHH" per byte, so a logged string cannot end a line or drive a
 *     terminal.
 *
 * Valid UTF-8 without backslashes is unchanged. pt_unescape() reads the same
 * form back (filters: comm=\xff\xfebad).
 */
#ifndef PTESCOPE_ESCAPE_H
#define PTESCOPE_ESCAPE_H

#include <stddef.h>

#include <jansson.h>

#define PT_ESC_CONTROL 1u

/* The room pt_escape() may need for @n input bytes, with the NUL. */
#define PT_ESC_SIZE(n) (4 * (n) + 1)

/*
 * Writes @s escaped into @out (always NUL-terminated when @outlen > 0; cut at
 * a whole escape). Returns 0, or -ENOSPC when it was cut.
 */
int pt_escape(const char *s, unsigned flags, char *out, size_t outlen);

/* A JSON string of @s escaped (no PT_ESC_CONTROL: JSON escapes those itself). NULL: ENOMEM. */
json_t *pt_json_text(const char *s);

/*
 * Reads the escaped form back into bytes: "\\" and "\xHH" are decoded, other
 * bytes copied as they are. Returns 0, -EINVAL for another backslash sequence
 * or "\x00", -ENAMETOOLONG when the result (with its NUL) is over @outlen.
 */
int pt_unescape(const char *s, char *out, size_t outlen);

#endif
