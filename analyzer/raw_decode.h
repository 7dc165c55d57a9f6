/* SPDX-License-Identifier: MIT */
/*
 * Raw ring-buffer record decoding for the events ptescope reads:
 * ftrace:funcgraph_entry, ftrace:funcgraph_exit, sched:sched_process_fork,
 * sched:sched_switch, and the kprobe/kretprobe events of one group (live
 * capture's fork-level hooks: a function entered, a function returned).
 *
 * Fields are looked up by name once, from the event formats a tep_handle
 * holds (parsed from a trace.dat, or from tracefs for live capture: their
 * layout has changed across kernels), and read by offset per record, each
 * offset checked against the record's size. Used by the trace.dat reader and
 * the live capture; does not allocate per record.
 */
#ifndef PTESCOPE_RAW_DECODE_H
#define PTESCOPE_RAW_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include <traceevent/event-parse.h>

#include "event.h"

struct pt_raw_decoder;

#define PT_RAW_MAX_PROBES 32

struct pt_raw_event {
	enum pt_event_type type; /* PT_EV_ENTRY, PT_EV_EXIT, PT_EV_FORK, PT_EV_SWITCH,
				  * PT_EV_NEWTASK or PT_EV_PASS_START/END */
	int pid;		 /* the task (the parent for FORK, prev for SWITCH) */
	int depth;		    /* -1 for probe events (no depth) */
	uint64_t func;		    /* function address, to resolve with tep_find_function */
	uint64_t calltime, rettime; /* EXIT: trace-clock times of call and return;
				     * PT_NO_TIME for a kretprobe */
	int64_t overrun;	    /* EXIT: the task's return-stack overruns so far, -1 absent */
	int child_pid;		    /* FORK, NEWTASK: the child; SWITCH: the next task */
	uint64_t clone_flags;	    /* NEWTASK */
	bool preempted;		    /* SWITCH: prev left runnable ("R+") */
	char parent_comm[17], child_comm[17];
	bool in_irq; /* recorded in hardirq, softirq or NMI context, or with interrupts off */
	struct pt_task_ctr ctr; /* ENTRY of a probe with the counter fields below */
	bool has_site;		/* site holds what the probe fetched */
	struct pt_site site;	/* last: pt_raw_decode clears it only for the probes
				 * that fill it */
};

/* The fields a kprobe names to carry the task's scheduler counters
 * (struct pt_task_ctr): all four, or the probe carries none. */
#define PT_RAW_CTR_TASK "pt_task"
#define PT_RAW_CTR_NIVCSW "pt_niv"
#define PT_RAW_CTR_PCOUNT "pt_runs"
#define PT_RAW_CTR_WAIT "pt_wait"

/* The call-site events inside copy_page_range (the daemon's callsite.h), by
 * their names in the group, and their fields: a pass start carries
 * PT_RAW_PASS_PTL (the child's PTE lock) or PT_RAW_PASS_ADDR; a pass end the
 * lock, the two operands of the copy loop's `addr != end` test (either
 * order), its `ret` and the pass's rss[4] (struct pt_site). */
#define PT_RAW_PASS_START_EVENT "cpr_pass_start"
#define PT_RAW_PASS_END_EVENT "cpr_pass_end"
#define PT_RAW_PASS_PTL "pt_ptl"
#define PT_RAW_PASS_ADDR "pt_addr"
#define PT_RAW_PASS_A "pt_a"
#define PT_RAW_PASS_B "pt_b"
#define PT_RAW_PASS_RET "pt_ret"
#define PT_RAW_PASS_RSS "pt_rss"
/* An entry probe's extra fields: the VMA copy_page_range copies (both or
 * neither), the child's mm counters at wake_up_new_task (all four or none). */
#define PT_RAW_VMA_START "pt_vms"
#define PT_RAW_VMA_END "pt_vme"
#define PT_RAW_CHILD_RSS "pt_crss" /* + 0..3 */
/* ... and the parent's memory at dup_mmap or uprobe_dup_mmap (all six or none):
 * its mm_struct's four counters, pgtables_bytes and map_count */
#define PT_RAW_PARENT_RSS "pt_prss" /* + 0..3 */
#define PT_RAW_PARENT_PTE "pt_ppte"
#define PT_RAW_PARENT_MAPS "pt_pmaps"

/*
 * Resolves the fields from @tep's formats. Returns 0; -ENOENT when @tep has
 * neither the funcgraph events nor sched_process_fork (with usable fields);
 * -ENOMEM. Free with pt_raw_decoder_free().
 */
int pt_raw_decoder_new(struct tep_handle *tep, struct pt_raw_decoder **out);
void pt_raw_decoder_free(struct pt_raw_decoder *d);

/*
 * Also decodes the kprobe events of @group in the decoder's tep (those with
 * a __probe_ip field: ENTRY of the probed function) and its kretprobe events
 * (__probe_func and __probe_ret_ip: EXIT). Such records have no depth
 * (-1: the reconstruction stacks calls in order) and no kernel call/return
 * times (the record's time is the event's). An entry probe with the
 * PT_RAW_CTR_* fields also gives the task's counters (pt_raw_event.ctr), one
 * with PT_RAW_VMA_*, PT_RAW_CHILD_RSS* or PT_RAW_PARENT_* fields those (site). The events
 * named PT_RAW_PASS_START_EVENT and PT_RAW_PASS_END_EVENT are pass starts
 * and ends (PT_EV_PASS_*, their fields in site), not function entries.
 * Returns how many events were
 * found, -E2BIG past PT_RAW_MAX_PROBES, -ENOMEM.
 */
int pt_raw_decoder_add_probes(struct pt_raw_decoder *d, const char *group);

/* Whether the formats had the function_graph events / the fork event. */
bool pt_raw_decoder_has_graph(const struct pt_raw_decoder *d);
bool pt_raw_decoder_has_fork(const struct pt_raw_decoder *d);
/* Whether sched_switch can be decoded: its pid fields and a prev_state whose
 * preemption bit the print format names (pt_raw_switch_preempt_mask). */
bool pt_raw_decoder_has_switch(const struct pt_raw_decoder *d);

/* The sched_switch prev_state bit printed as "+" (preempted), read from the
 * event's print format in @tep; 0 when there is no such event or shape. */
uint64_t pt_raw_switch_preempt_mask(struct tep_handle *tep);

/*
 * Where a funcgraph_exit record holds its calltime (*call_off) and rettime
 * (*ret_off): 8 bytes each, in this machine's byte order. True when they
 * overlap each other and no other field pt_raw_decode() reads of an EXIT,
 * so two such records of one size that differ only there decode alike but
 * for those two times (dat_helper.c sends the second one without decoding
 * it); false otherwise (no such event, other sizes, another byte order).
 */
bool pt_raw_decoder_exit_times(const struct pt_raw_decoder *d, int *call_off, int *ret_off);

/*
 * Decodes @size bytes of raw record @data. Returns 1 and fills @ev when it is
 * one of our events with every field inside the record, 0 when it is another
 * event or too short for its format.
 */
int pt_raw_decode(const struct pt_raw_decoder *d, const void *data, int size,
		  struct pt_raw_event *ev);

/*
 * The pt_event of decoded record @raw, read on @cpu with record timestamp
 * @ts: the one conversion for trace.dat (dat_helper.c) and live capture.
 * ENTRY and FORK happen at @ts; an EXIT at its rettime, with call_ns its
 * calltime and dur_ns the difference (PT_NO_TIME if rettime < calltime): the
 * kernel's own times, exact where nested records share one timestamp, and
 * its overrun count (event.h); a kretprobe's EXIT at @ts. FORK
 * comms point into @raw. An ENTRY's or EXIT's func, func_id and comm are left
 * NULL/0: the caller names raw->func (an address) and the task its own way.
 * Returns 0, or -EINVAL for a type that is not one of the three.
 */
int pt_raw_to_event(const struct pt_raw_event *raw, int cpu, uint64_t ts, struct pt_event *ev);

#endif
