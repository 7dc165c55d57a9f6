/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the BTF reader (daemon/btf.c): any bytes are loaded as
 * a BTF blob, and when the load succeeds, member paths and parameters are
 * asked for by the names the seeds (corpus_btf: test_btf --write-seeds) use,
 * so mutations of those blobs reach the walks through anonymous members,
 * typedef chains, arrays and prototypes. Checked: the answer codes are the
 * documented ones, an error always says something, an answer's size fits
 * the 32-bit fields. Crashes, hangs, leaks and undefined behaviour are what
 * this looks for.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "btf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const members[][2] = {
    {"task", "pid"},
    {"task", "a"},
    {"task", "b"},
    {"task", "alias"},
    {"task", "info"},
    {"task", "info.pcount"},
    {"task", "info.delay"},
    {"task", "parent"},
    {"task", "comm"},
    {"task", "odd"},
    {"task", "parent.pid"},
    {"task", "comm.x"},
    {"bits", "x"},
    {"bits", "y"},
    {"oldbits", "z"},
    {"cyc", "m"},
    {"cyc", "m.x"},
    {"u", "p"},
    {"u", "v"},
    {"self", "x"},
    {"s", "ok"},
    {"s", "dangling"},
    {"s", "missing"},
    {"info", "delay"},
};

static void ask(const struct pd_btf *b)
{
	char err[128];
	uint32_t off, size;
	int idx, rc;

	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		err[0] = '\0';
		rc = pd_btf_member(b, members[i][0], members[i][1], &off, &size, err, sizeof(err));
		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		if (rc < 0 && !err[0])
			abort();
	}
	for (int i = 0; i < 3; i++) {
		static const char *const params[] = {"dst_vma", "src_vma", "nope"};

		err[0] = '\0';
		rc = pd_btf_param(b, "copy_page_range", params[i], &idx, err, sizeof(err));
		if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
			abort();
		if ((rc < 0 && !err[0]) || (rc == 0 && (idx < 1 || idx > 65535)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pd_btf *b = NULL;
	char err[128] = "";
	int rc = pd_btf_load_mem(data, size, &b, err, sizeof(err));

	if (rc < 0) {
		if (b || !err[0] || (rc != -EINVAL && rc != -ENOMEM))
			abort();
		return 0;
	}
	if (!b)
		abort();
	ask(b);
	pd_btf_free(b);
	return 0;
}
