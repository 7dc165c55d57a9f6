/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the function_graph text reader: any bytes go through
 * pt_text_read_mem (with a small max line, so the long-line path is reached
 * too), and every event is checked for the invariants consumers rely on.
 * Crashes, hangs, leaks and undefined behaviour are what this looks for.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_ctx {
	uint64_t events;
	const char *names[64]; /* func by func_id, for ids below 64 */
};

static int fuzz_event(const struct pt_event *ev, void *arg)
{
	struct fuzz_ctx *c = arg;

	if (ev->type < PT_EV_ENTRY || ev->type > PT_EV_LOST)
		abort();
	if ((ev->func == NULL) != (ev->func_id == 0))
		abort();
	if (ev->func) {
		if (!ev->func[0] || strlen(ev->func) > 4096)
			abort();
		if (ev->func_id < 64) {
			if (!c->names[ev->func_id])
				c->names[ev->func_id] = ev->func;
			else if (strcmp(c->names[ev->func_id], ev->func))
				abort();
		}
	}
	if (ev->comm)
		(void)strlen(ev->comm);
	if (ev->child_comm)
		(void)strlen(ev->child_comm);
	if (ev->type <= PT_EV_LEAF && ev->depth < 0)
		abort();
	if (ev->type == PT_EV_ENTRY && ev->dur_ns != PT_NO_TIME)
		abort();
	if (ev->cpu < -1 || ev->pid < -1)
		abort();
	c->events++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pt_read_opts opts = {.max_line_bytes = size > 2 ? size / 2 : 1};
	struct fuzz_ctx c = {0};
	struct pt_input_stats st;
	char err[128];
	int ret;

	ret =
	    pt_text_read_mem((const char *)data, size, fuzz_event, &c, &st, NULL, err, sizeof(err));
	if (ret != 0 && ret != -EINVAL)
		abort();
	if (st.events != c.events || st.unparsed_lines > st.lines)
		abort();
	if (ret == -EINVAL && (!memchr(err, '\0', sizeof(err)) || c.events))
		abort();
	/* The long-line path, with the same bytes. */
	memset(&c, 0, sizeof(c));
	ret = pt_text_read_mem((const char *)data, size, fuzz_event, &c, &st, &opts, NULL, 0);
	if (ret != 0 && ret != -EINVAL)
		abort();
	return 0;
}
