/* SPDX-License-Identifier: MIT */
/*
 * Host-wide locks on parts of a tracefs: its top level ("top") and each
 * instance ("instance-NAME"). Every ptescoped on the host takes them in the
 * same directory (--lock-dir, /run/ptescope), named by the tracefs mount's
 * device and inode (so /sys/kernel/tracing and /sys/kernel/debug/tracing
 * are one), with flock(2): the kernel drops a lock when its holder dies, so a
 * lock that can be taken means nobody alive uses that part, and whatever of
 * ours is left there is a dead run's to repair. The holder's pid is written
 * into the file for the message of whoever is refused.
 */
#ifndef PTESCOPED_TFS_LOCK_H
#define PTESCOPED_TFS_LOCK_H

#include <stddef.h>

struct pd_tfs_lock;

/*
 * Takes the lock @what ("top", "instance-NAME") of the tracefs at
 * @tracefs_dir, in @lock_dir (made, mode 0700, when missing; the lock files
 * are root's, mode 0600: flock needs only read access), without
 * waiting. 0; -EBUSY when another process holds it, with its pid in @err;
 * or -errno with @err.
 */
int pd_tfs_lock_take(const char *lock_dir, const char *tracefs_dir, const char *what,
		     struct pd_tfs_lock **out, char *err, size_t errlen);
/* Releases and frees @l. Accepts NULL. */
void pd_tfs_lock_release(struct pd_tfs_lock *l);

#endif
