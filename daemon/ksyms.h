/* SPDX-License-Identifier: MIT */
/*
 * Kernel symbol addresses of the few functions graph capture hooks, from a
 * kallsyms file (/proc/kallsyms), so funcgraph records (which carry an
 * address) are named without parsing the whole symbol table per event.
 * Fed by capture.c with the plan's function names; looked up per event.
 *
 * Sized for the handful of names of one detail level: at most
 * PD_KSYMS_MAX addresses (a name can appear more than once: static
 * functions of the same name in several files), searched linearly.
 */
#ifndef PTESCOPED_KSYMS_H
#define PTESCOPED_KSYMS_H

#include <stdint.h>
#include <stddef.h>

#define PD_KSYMS_MAX 64

struct pd_ksyms;

/*
 * Reads @path for the addresses of @names (@nr of them; the strings must
 * outlive the table). Returns 0; -EPERM when the file shows only zero
 * addresses (no CAP_SYSLOG); -errno when it cannot be read; message in @err.
 * Free with pd_ksyms_free().
 */
int pd_ksyms_load(const char *path, const char *const *names, int nr, struct pd_ksyms **out,
		  char *err, size_t errlen);
void pd_ksyms_free(struct pd_ksyms *k);

/* The name whose function holds @addr (the recorded address is the function's,
 * or a few bytes in past an ENDBR), and its id (index + 1) in @id; NULL and 0
 * when none. */
const char *pd_ksyms_name(const struct pd_ksyms *k, uint64_t addr, uint64_t *id);

#endif
