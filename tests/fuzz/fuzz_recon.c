/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the reconstruction: the input is read as a sequence
 * of 8-byte event records (type, cpu, pid, depth, function, time step,
 * duration) over a small set of fork-path and other function names, so the
 * fuzzer explores hostile orders: exits without entries, depth jumps,
 * migrations, lost events, fork events anywhere. Every fork handed over is
 * checked for the invariants the report and the store rely on, and the
 * report is computed over them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[16] = {
	"kernel_clone", "copy_process", "dup_mmap",	  "copy_page_range",
	"copy_pte_range", "_raw_spin_lock", "_raw_spin_unlock", "__cond_resched",
	"__pte_alloc",	"vm_normal_page", "add_swap_count_continuation", "copy_huge_pmd",
	"schedule",	"irq_enter_rcu", "_do_fork",	      "rt_spin_lock",
};

struct sink {
	struct pt_fork forks[64];
	size_t n;
};

static int check_fork(const struct pt_fork *f, void *ctx)
{
	struct sink *s = ctx;

	if (f->complete && f->flags)
		abort();
	if (f->vmas != PT_NULL && (f->vmas < 0 || (size_t)f->vmas != f->nr_vma))
		abort();
	if (f->pte_passes != PT_NULL && (size_t)f->pte_passes != f->nr_pass)
		abort();
	if (f->lock_breaks != PT_NULL && (f->lock_breaks < 0 || f->lock_breaks > (int64_t)f->nr_pass))
		abort();
	for (size_t i = 0; i < f->nr_pass; i++)
		if (f->pass[i].vma >= (int32_t)f->nr_vma)
			abort();
	if (s->n < 64 && pt_fork_copy(&s->forks[s->n], f) == 0)
		s->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink s = {.n = 0};
	struct recon_opts ro = {.on_fork = check_fork, .ctx = &s};
	struct recon *r = NULL;
	uint64_t t = 1000;
	FILE *devnull;

	if (recon_new(&ro, &r))
		return 0;
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *p = data + i;
		struct pt_event ev;

		pt_event_init(&ev, (enum pt_event_type)(1 + p[0] % 5));
		ev.cpu = p[1] % 4 == 3 ? -1 : p[1] % 4;
		ev.pid = p[2] % 5 == 4 ? -1 : 100 + p[2] % 5;
		ev.depth = p[3] % 12 == 11 ? -1 : p[3] % 12;
		ev.func = (p[4] & 0x80) && ev.type == PT_EV_EXIT ? NULL : names[p[4] % 16];
		ev.func_id = ev.func ? (uint64_t)(p[4] % 16) + 1 : 0;
		t += p[5];
		ev.ts_ns = (p[6] & 0x80) ? PT_NO_TIME : t;
		ev.dur_ns = (ev.type == PT_EV_EXIT || ev.type == PT_EV_LEAF) && !(p[6] & 0x40) ? p[7] : PT_NO_TIME;
		if (ev.type == PT_EV_EXIT && (p[6] & 0x20) && ev.dur_ns != PT_NO_TIME && t > ev.dur_ns)
			ev.call_ns = t - ev.dur_ns;
		ev.comm = "fuzz";
		ev.child_pid = 200 + p[7];
		ev.child_comm = "child";
		ev.lost = p[7];
		ev.in_irq = p[6] & 0x10;
		if (recon_feed(&ev, r))
			break;
	}
	recon_finish(r);
	recon_free(r);
	devnull = fopen("/dev/null", "w");
	if (devnull) {
		pt_report_write(devnull, PT_REPORT_JSON, 0, NULL, 0, s.forks, s.n);
		pt_report_write(devnull, PT_REPORT_TEXT, PT_KINDS_ALL, NULL, 0, s.forks, s.n);
		fclose(devnull);
	}
	for (size_t i = 0; i < s.n; i++)
		pt_fork_release(&s.forks[i]);
	return 0;
}
