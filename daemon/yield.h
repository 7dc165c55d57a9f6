/* SPDX-License-Identifier: MIT */
/*
 * Yield points, on under --sched idle. A SCHED_IDLE thread that gets the CPU
 * from a busy task (a forker whose slice ran out, in the middle of its copy)
 * keeps it until the next scheduler tick (4 ms at HZ=250) unless it gives it
 * back; each of the daemon's threads passes yield points in its long work (a
 * tick's reading and decoding, each fork it stores and SQLite's steps, each
 * /proc reading), and at the first one PD_YIELD_NS after its last yield
 * calls sched_yield(): a waiting task runs first, and as an idle-policy
 * thread that ran, the daemon's turn comes back only after that task has run
 * far longer. On an idle CPU the call returns at once.
 */
#ifndef PTESCOPED_YIELD_H
#define PTESCOPED_YIELD_H

#include <stdbool.h>

#define PD_YIELD_NS 200000ull /* 200 us */

/* Turns yield points on or off for every thread (off: a point costs a load). */
void pd_yield_enable(bool on);

/* A yield point (any thread). */
void pd_yield_point(void);

/* The calling thread's yields so far (tests). */
unsigned long long pd_yield_count(void);

#endif
