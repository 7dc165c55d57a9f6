/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the trace.dat path: the input is written to a memfd
 * and read with pt_dat_read() into the reconstruction, then the report is
 * computed. libtracecmd runs in the reader's sandboxed child, so a library
 * crash must come back as an error here; anything that crashes, hangs or
 * leaks in this process (the pipe protocol, the interner, recon, stats) is a
 * finding. The helper's own flyrecord walk (dat_fly.c) also runs here, in
 * this process, over the input's bytes (dat_fly.h pt_fly_open_mem), with
 * its metadata copy and kallsyms index (dat_kallsyms.h), so those parsers
 * are fuzzed with coverage and the sanitizers. Seeded with a real
 * trace.dat cut from a Debian 6.1 recording and small synthetic files with
 * CPU data (gen_fly_seeds.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dat_fly.h"
#include "dat_kallsyms.h"
#include "reader.h"
#include "recon.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_fork(const struct pt_fork *f, void *ctx)
{
	(*(size_t *)ctx)++;
	if (f->nr_pass && !f->pass)
		abort();
	return 0;
}

/* The metadata copy and the kallsyms index of the fast walk: some lookups. */
static void walk_meta(struct pt_fly *f, const uint8_t *data, size_t size)
{
	struct pt_ksyms *k = NULL;
	char why[128], *text = NULL;
	int fd = -1;

	if (pt_fly_meta(f, &fd, &text, why, sizeof(why)) == 0 && text &&
	    pt_ksyms_new(text, &k) == 0) {
		for (size_t off = 0; off + 8 <= size && off < 4096; off += 8) {
			uint64_t addr;

			memcpy(&addr, data + off, 8);
			pt_ksyms_find(k, addr);
		}
		pt_ksyms_free(k);
	}
	if (fd >= 0)
		close(fd);
}

/* Every record of the fast walk, each byte of it read. */
static void walk_fly(const uint8_t *data, size_t size)
{
	struct pt_fly *f;
	struct pt_fly_rec r;
	char why[128];
	unsigned sum = 0;

	if (pt_fly_open_mem(data, size, &f, why, sizeof(why)))
		return;
	for (int cpu = 0; cpu < pt_fly_cpus(f); cpu++)
		pt_fly_peek_cpu(f, cpu, &r);
	while (pt_fly_next(f, &r) == PT_FLY_REC) {
		if (r.size < 0 || r.cpu < 0 || r.cpu >= pt_fly_cpus(f))
			abort();
		for (int i = 0; i < r.size; i++)
			sum += ((const uint8_t *)r.data)[i];
	}
	walk_meta(f, data, size);
	pt_fly_free(f);
	if (sum == 1u << 31) /* keeps the reads */
		fprintf(stderr, "%u\n", sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t forks = 0;
	struct recon_opts ro = {.on_fork = count_fork, .ctx = &forks};
	struct pt_input_stats st;
	struct recon *r = NULL;
	char path[64], err[512];
	int fd = memfd_create("fuzz.dat", MFD_CLOEXEC);

	walk_fly(data, size);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	pt_input_stats_init(&st);
	if (recon_new(&ro, &r) == 0) {
		err[0] = '\0';
		if (pt_dat_read(path, recon_feed, r, &st, NULL, err, sizeof(err)) == 0)
			recon_finish(r);
		else if (!err[0])
			abort(); /* every failure must say why */
		recon_free(r);
	}
	close(fd);
	return 0;
}
