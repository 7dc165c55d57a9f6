/* SPDX-License-Identifier: MIT */
/*
 * Kernel symbol addresses of the few functions graph capture hooks, so
 * funcgraph records (which carry an address) are named without parsing the
 * whole symbol table per event; and, in the same pass, where each name
 * stands in ftrace's function list. Fed by capture_probe.c and
 * capture_setup.c with the plan's candidate names; looked up per event
 * (capture_read.c).
 *
 * One reader for three listings, each scanned once, line by line, without
 * parsing any line but those of the names asked for (at start in an icount
 * guest, sscanf over all of /proc/kallsyms was seconds of CPU):
 *   /proc/kallsyms                                "ADDR TYPE NAME [MOD]"
 *   tracefs available_filter_functions            "NAME [MOD]"
 *   tracefs available_filter_functions_addrs (6.5) "ADDR NAME [MOD]"
 * In ftrace's listings the line number (from 1) of a function is its index:
 * set_ftrace_filter takes "N" for the Nth line and then skips matching
 * every function's name (capture_plan.h).
 *
 * Sized for the handful of names of one detail level: at most
 * PD_KSYMS_MAX addresses (a name can appear more than once: static
 * functions of the same name in several files), searched linearly.
 */
#ifndef PTESCOPED_KSYMS_H
#define PTESCOPED_KSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_KSYMS_MAX 64

enum pd_ksyms_format {
	PD_KSYMS_KALLSYMS,     /* ADDR TYPE NAME */
	PD_KSYMS_FTRACE,       /* NAME */
	PD_KSYMS_FTRACE_ADDRS, /* ADDR NAME (the address of its ftrace call site) */
};

struct pd_ksyms;

/*
 * Reads @path, in @fmt, for @names (@nr of them, at most 64; the strings
 * must outlive the table). Returns 0; -EPERM when the file shows addresses
 * and they are all zero (no CAP_SYSLOG); -errno when it cannot be read;
 * message in @err. Free with pd_ksyms_free().
 */
int pd_ksyms_load(const char *path, enum pd_ksyms_format fmt, const char *const *names, int nr,
		  struct pd_ksyms **out, char *err, size_t errlen);
void pd_ksyms_free(struct pd_ksyms *k);

/* How many lines named names[@i], and the number (from 1) of the first; 0 when none. */
unsigned pd_ksyms_count(const struct pd_ksyms *k, int i);
unsigned pd_ksyms_line(const struct pd_ksyms *k, int i);

/* The address of the first line that named names[@i]; 0 when none (or no addresses). */
uint64_t pd_ksyms_addr(const struct pd_ksyms *k, int i);
/* kallsyms only: where names[@i]'s code ends, the first greater address on
 * the lines after its first (kallsyms lists the kernel's symbols by address);
 * 0 when unknown. */
uint64_t pd_ksyms_end(const struct pd_ksyms *k, int i);

/* Whether the file gave addresses (every line of a found name has one). */
bool pd_ksyms_has_addrs(const struct pd_ksyms *k);

/* The name whose function holds @addr (the recorded address is the function's,
 * or a few bytes in past an ENDBR: the ftrace call site), and its id (index + 1)
 * in @id; NULL and 0 when none. */
const char *pd_ksyms_name(const struct pd_ksyms *k, uint64_t addr, uint64_t *id);

#endif
