/* SPDX-License-Identifier: MIT */
/*
 * The first thing a start does, and all `ptescoped --repair` does: take the
 * host-wide lock of our tracefs instance (tfs_lock.h) and undo what a
 * ptescoped that died left in tracefs (its state file, tfs.h), before the
 * configuration's database, spool or listener are even opened: a start that
 * fails later (a bad database path, a port in use) leaves nothing hooked.
 */
#ifndef PTESCOPED_REPAIR_H
#define PTESCOPED_REPAIR_H

struct pd_config;
struct pd_tfs_lock;

/*
 * Locks @cfg's instance (the lock in *@lock, held until the caller releases
 * it; NULL when nothing needed it: capture off and no state file) and repairs
 * tracefs from @cfg's state file. 0, or -errno after logging why (-EBUSY:
 * another ptescoped runs with this instance, or holds the top level a dead
 * one changed).
 */
int pd_repair_tracefs(const struct pd_config *cfg, struct pd_tfs_lock **lock);

#endif
