/* SPDX-License-Identifier: MIT */
/* Yield points (yield.h): a per-thread clock of the last yield. */
#include "yield.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "util.h"

static atomic_bool enabled;
static _Thread_local uint64_t last_ns;
static _Thread_local unsigned long long yields;

void pd_yield_enable(bool on)
{
	atomic_store_explicit(&enabled, on, memory_order_relaxed);
}

void pd_yield_point(void)
{
	uint64_t now;

	if (!atomic_load_explicit(&enabled, memory_order_relaxed))
		return;
	now = pt_mono_ns();
	if (now - last_ns < PD_YIELD_NS)
		return;
	sched_yield();
	yields++;
	last_ns = pt_mono_ns();
}

unsigned long long pd_yield_count(void)
{
	return yields;
}
