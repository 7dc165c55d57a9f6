/* SPDX-License-Identifier: MIT */
/*
 * Format detection (reader.h): which reader an input needs, from its first
 * bytes, never its name. trace.dat files start with their magic; text that
 * names the funcgraph events (or starts "cpus=") is trace-cmd report output;
 * other text is function_graph text as the kernel writes it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reader.h"

#define DAT_MAGIC "\027\010\104tracing"
#define DAT_MAGIC_LEN 10

const char *pt_format_name(enum pt_format fmt)
{
	switch (fmt) {
	case PT_FMT_DAT:
		return "dat";
	case PT_FMT_TEXT:
		return "text";
	case PT_FMT_REPORT_TEXT:
		return "report-text";
	default:
		return "unknown";
	}
}

int pt_detect_format(const unsigned char *head, size_t head_len, enum pt_format *fmt, char *err,
		     size_t errlen)
{
	size_t ctrl = 0;

	*fmt = PT_FMT_UNKNOWN;
	if (head_len == 0) {
		snprintf(err, errlen, "empty file");
		return -EINVAL;
	}
	if (head_len >= DAT_MAGIC_LEN && !memcmp(head, DAT_MAGIC, DAT_MAGIC_LEN)) {
		*fmt = PT_FMT_DAT;
		return 0;
	}
	for (size_t i = 0; i < head_len; i++) {
		unsigned char ch = head[i];

		if (ch == 0)
			ctrl += 8;
		else if (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t')
			ctrl++;
	}
	if (ctrl * 20 > head_len) {
		snprintf(err, errlen, "binary data, not a trace (neither trace.dat nor text)");
		return -EINVAL;
	}
	/* trace-cmd report output names its events; kernel text does not */
	if (memmem(head, head_len, "funcgraph_entry:", 16) ||
	    memmem(head, head_len, "funcgraph_exit:", 15) ||
	    (head_len > 5 && !memcmp(head, "cpus=", 5)))
		*fmt = PT_FMT_REPORT_TEXT;
	else
		*fmt = PT_FMT_TEXT;
	return 0;
}
