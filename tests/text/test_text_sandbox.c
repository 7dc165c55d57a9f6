/* SPDX-License-Identifier: MIT */
/*
 * Text traces read in the helper process (pt_text_read_helper, the daemon's
 * way for uploads) against the text reader in this process
 * (pt_text_read_fd): for every file given, the same events in the same order
 * (rendered field by field, text_collect.h), the same statistics, and for a
 * file that is no trace the same refusal (-EINVAL, the same message).
 *
 *   test_text_sandbox FILE...
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reader.h"
#include "check.h"
#include "text_collect.h"

static int read_one(const char *path, bool helper, struct collect *c, struct pt_input_stats *st,
		    char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	memset(c, 0, sizeof(*c));
	c->render = true;
	pt_input_stats_init(st);
	err[0] = 0;
	ret = helper ? pt_text_read_helper(fd, path, collect_fn, c, st, NULL, err, errlen)
		     : pt_text_read_fd(fd, collect_fn, c, st, NULL, err, errlen);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct collect a, b;
		struct pt_input_stats sa, sb;
		char ea[512], eb[512];
		int ra = read_one(argv[i], false, &a, &sa, ea, sizeof(ea));
		int rb = read_one(argv[i], true, &b, &sb, eb, sizeof(eb));

		CHECK_EQ(rb, ra);
		if (ra) {
			/* the helper's message is the reader's, with the file named */
			CHECK(strstr(eb, ea) != NULL);
			printf("%s: refused both ways: %s\n", argv[i], eb);
			continue;
		}
		CHECK(a.len == b.len && !memcmp(a.out, b.out, a.len));
		CHECK_EQ(b.bad, 0);
		CHECK_EQ(sb.events, sa.events);
		CHECK_EQ(sb.lines, sa.lines);
		CHECK_EQ(sb.unparsed_lines, sa.unparsed_lines);
		CHECK_EQ(sb.lost_events, sa.lost_events);
		CHECK_EQ(sb.lost_unknown, sa.lost_unknown);
		CHECK_EQ(sb.first_ts_ns, sa.first_ts_ns);
		CHECK_EQ(sb.last_ts_ns, sa.last_ts_ns);
		CHECK_EQ(sb.cpus, sa.cpus);
		printf("%s: %llu events, %llu lines the same in the helper\n", argv[i],
		       (unsigned long long)sb.events, (unsigned long long)sb.lines);
		free(a.out);
		free(b.out);
		free(a.names);
		free(b.names);
	}
	TEST_DONE();
}
