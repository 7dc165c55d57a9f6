/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery: where, inside the running kernel's copy_page_range,
 * each copy_pte_range pass takes and drops its PTE lock, and where the
 * pass's figures are at that moment, found from the function's live machine
 * code (no debug info, no table of known kernels). A pure function of the
 * code bytes and a few kallsyms addresses: callsite_live.c reads those from
 * the running kernel and arms the result; the unit tests feed it the code of
 * Debian's kernels (tests/fixtures/callsite/).
 *
 * copy_pte_range is inlined into copy_page_range on every kernel we know.
 * One pass is: the child's PTE lock taken (a spin-lock call, or the
 * map-and-lock call that takes it inside), the parent's PTE lock, PTEs
 * copied, the parent's lock dropped, the pass's RSS counts added, the
 * child's lock dropped (the pass end), then `ret` tested against -EIO and
 * `addr != end` sending it back to `again:`. A kprobe event on the pass-start
 * call and one on the pass-end call fire only while a fork copies page
 * tables; at the pass end the registers and stack slots the code compares
 * afterwards hold addr, end, ret and rss[4]. The classification is strict:
 * each role must be found exactly once, every operand must be provably the
 * same at the probe point as where the code reads it, or nothing is planned
 * and the reason says why (the daemon then keeps the fork detail without
 * passes). docs/architecture.md, "Passes from call sites", has the rules.
 *
 * Sized for one function of a few KiB (at most PD_CS_MAX_TEXT bytes).
 */
#ifndef PTESCOPED_CALLSITE_H
#define PTESCOPED_CALLSITE_H

#include <stddef.h>
#include <stdint.h>

#define PD_CS_MAX_TEXT 32768

/* Symbols whose addresses discovery needs (kallsyms), in this order. */
enum pd_cs_sym {
	PD_CS_RAW_LOCK,	   /* _raw_spin_lock */
	PD_CS_RAW_UNLOCK,  /* _raw_spin_unlock */
	PD_CS_RT_LOCK,	   /* rt_spin_lock (PREEMPT_RT) */
	PD_CS_RT_UNLOCK,   /* rt_spin_unlock */
	PD_CS_MAPLOCK_OLD, /* __pte_offset_map_lock (6.5 to 6.x) */
	PD_CS_MAPLOCK,	   /* pte_offset_map_lock (a function from 6.15 or so) */
	PD_CS_SRCMAP_OLD,  /* pte_offset_map_nolock */
	PD_CS_SRCMAP,	   /* pte_offset_map_rw_nolock */
	PD_CS_PTE_ALLOC,   /* __pte_alloc */
	PD_CS_MMLIST_LOCK, /* mmlist_lock (data: the swap list's lock) */
	PD_CS_TEXT_START,  /* _stext */
	PD_CS_TEXT_END,	   /* _etext */
	PD_CS_NR_SYMS
};

/* The kallsyms name of @s ("__pfx_" + it is its call-depth padding). */
const char *pd_cs_sym_name(enum pd_cs_sym s);

struct pd_cs_input {
	const uint8_t *text;	     /* copy_page_range's code as the kernel runs it */
	size_t size;		     /* its length: to the next symbol */
	uint64_t addr;		     /* its address */
	uint64_t sym[PD_CS_NR_SYMS]; /* 0: not in kallsyms */
	uint64_t pfx[PD_CS_NR_SYMS]; /* the __pfx_ symbol's address, 0: none */
	/* 1-based position of the map-lock function's `addr` parameter (BTF);
	 * 0: unknown (the pass start then fetches nothing) */
	int maplock_addr_arg;
};

enum pd_cs_shape {
	PD_CS_SHAPE_LOCK2 = 1, /* child's lock, parent's lock: two lock calls (6.1) */
	PD_CS_SHAPE_MAPLOCK,   /* map-and-lock, parent's map, parent's lock (6.5 on) */
};

struct pd_cs_plan {
	enum pd_cs_shape shape;
	/* the probes: start_off before or on the pass-start call, end_off before
	 * or on the pass-end call (the child's PTE unlock), from copy_page_range,
	 * and their kprobe fetch args (raw_decode.h PT_RAW_PASS_* names). A probe
	 * on a call is never jump-optimized: where the instructions just before a
	 * call allow, the probe sits on them instead (callsite.c, move_back), else
	 * where possible earlier on the only way to the call (move_up: 6.1's pass
	 * end sits before the rss[] add, a few dozen instructions before the
	 * child's unlock) */
	uint32_t start_off, end_off;
	char start_args[128];
	char end_args[256];
	/* the same on the calls themselves (the kernel refused the moved ones) */
	uint32_t call_start_off, call_end_off;
	char call_start_args[128];
	char call_end_args[256];
	uint32_t src_unlock_off, again_off, ret_test_off, loop_test_off;
};

/*
 * Finds the two call sites and their fetch args in @in. Returns 0 with @out
 * filled; -ENOTSUP when the code does not have a shape this understands (or
 * something else patched it: a breakpoint, a jump out of the kernel text),
 * -EINVAL for input that cannot be copy_page_range's code, -ENOMEM; the
 * reason, one line, in @why.
 */
int pd_cs_discover(const struct pd_cs_input *in, struct pd_cs_plan *out, char *why, size_t len);

#endif
