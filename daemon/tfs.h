/* SPDX-License-Identifier: MIT */
/*
 * Tracefs ownership: every tracefs file ptescoped changes outside its own
 * instance is saved first -- in memory and in a small state file
 * (tfs_state.h), fsync'ed before the change -- and written back by
 * pd_tfs_restore() while it still holds what ptescoped wrote. The kprobe
 * events it creates are recorded before they are created and removed one by
 * one. A run killed before it could restore (SIGKILL, a crash; a reboot
 * does not count: tracefs is fresh then) leaves the state file; the next
 * start (or `ptescoped --repair`) finds it (same boot id, owner pid gone)
 * and undoes what it recorded (pd_tfs_repair) before doing anything else.
 *
 * Inside the daemon's own instance nothing is saved: the instance is removed
 * as a whole, first, when restoring. The caller holds the host-wide lock of
 * that instance (tfs_lock.h) for as long as it runs; the top level's lock is
 * taken here at the first top-level save and given back after the restore.
 * The few files of the whole tracefs (kprobe_events, kprobe_profile,
 * dynamic_events, error_log) are always the top level's. Each instance has
 * its own kprobe group (pd_tfs_kprobe_group). pd_tfs_check_top_free() says
 * whether another tool uses the top level (a tracer, graph or function
 * filters, enabled events), which the caller refuses unless told to take
 * over (--force).
 *
 * Files are opened beneath the tracefs directory, never through a symlink,
 * with plain writes (O_CLOEXEC); names in filter files one per write, as the
 * kernel stops at the first unknown name of a write.
 */
#ifndef PTESCOPED_TFS_H
#define PTESCOPED_TFS_H

/* The kprobe event group of the default instance; other instances' groups
 * start with it ("ptescope_NAME"). */
#define PD_KPROBE_GROUP "ptescope"
#define PD_DEFAULT_INSTANCE "ptescoped"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pd_tfs;

/*
 * @tracing_dir: the tracefs mount (e.g. /sys/kernel/tracing). @state_file:
 * where saved values are kept between runs. Returns 0, -ENOMEM, or -errno
 * when @tracing_dir cannot be opened.
 */
int pd_tfs_new(const char *tracing_dir, const char *state_file, struct pd_tfs **out);
/* Frees without restoring anything. Accepts NULL. */
void pd_tfs_free(struct pd_tfs *t);

/* Takes the host-wide top lock in @lock_dir before the first top-level
 * save (tfs_lock.h); NULL or never set: no lock (tests of one process). */
void pd_tfs_set_lock_dir(struct pd_tfs *t, const char *lock_dir);

/*
 * The kprobe group of instance @instance: "ptescope" for the default
 * instance (and NULL), else "ptescope_" and the name with '-' and '.' as
 * '_', cut to 32 characters, plus a hash of the name when it had to be
 * changed. 0 or -ENAMETOOLONG.
 */
int pd_tfs_kprobe_group(const char *instance, char *out, size_t len);

/*
 * Repairs what a previous run of ours left: restores the saved files of the
 * state file that still hold what it wrote, removes the kprobe events it
 * recorded and the instance it names (or a leftover instance called
 * @instance: the caller holds that instance's lock). Returns the number of
 * things repaired (0: nothing was left); -EBUSY when the state file belongs
 * to a ptescoped that is still running, or the top level it changed is
 * locked by another; -EPERM or -EINVAL when the state file cannot be trusted
 * (tfs_state.h); or -errno. The state file is removed only when everything
 * was undone. @msg says what was done or what failed.
 */
int pd_tfs_repair(struct pd_tfs *t, const char *instance, char *msg, size_t msglen);

/*
 * Whether events of kprobe group @group are enabled at the top level or in
 * an instance other than @own: another tool enabled ours there (or a killed
 * run left an instance). -EBUSY with where in @what, else 0. With @remove,
 * such instances are removed (--force) and only the top level counts.
 */
int pd_tfs_group_in_use(struct pd_tfs *t, const char *group, const char *own, bool remove,
			char *what, size_t len);

/* Removes every event of kprobe group @group (off first): leftovers of a
 * dead run of our instance, whose lock the caller holds. 0 or -errno. */
int pd_tfs_remove_group(struct pd_tfs *t, const char *group);

/* 0 when the top level is unused (tracer nop, no filters, no events), else
 * -EBUSY and what is in use in @what. */
int pd_tfs_check_top_free(struct pd_tfs *t, char *what, size_t len);

/* Makes the instance @name (removing a leftover of that name) the target of
 * later writes; recorded in the state file. 0 or -errno with @err. */
int pd_tfs_use_instance(struct pd_tfs *t, const char *name, char *err, size_t errlen);
/* Removes the instance again and makes the top level the target. */
int pd_tfs_drop_instance(struct pd_tfs *t, char *err, size_t errlen);
/* The instance in use, NULL at the top level. */
const char *pd_tfs_instance(const struct pd_tfs *t);
const char *pd_tfs_dir(const struct pd_tfs *t);

/* Full path of @rel in the current target ("instances/NAME/REL" or "REL"). */
int pd_tfs_path(const struct pd_tfs *t, const char *rel, char *buf, size_t len);

/* Whether @rel exists in the current target. */
bool pd_tfs_exists(const struct pd_tfs *t, const char *rel);

/* Reads @rel of the current target into @buf (NUL-terminated, at most
 * len - 1 bytes). Returns the length or -errno (-EFBIG: did not fit). */
int pd_tfs_read(const struct pd_tfs *t, const char *rel, char *buf, size_t len);

/*
 * Replaces @rel's content with @value (truncating), saving the old value
 * first when outside our instance. "trace" is cleared, never saved.
 * Returns 0 or -errno with a message naming the file.
 */
int pd_tfs_write(struct pd_tfs *t, const char *rel, const char *value, char *err, size_t errlen);
/* Appends @value in one write (filter files: one name per call); saves first. */
int pd_tfs_append(struct pd_tfs *t, const char *rel, const char *value, char *err, size_t errlen);

/*
 * Stops and removes our instance, then writes back every saved value that
 * still holds what we wrote, in the safe order (tracing off, our events off,
 * our kprobe events removed, options, tracer to nop, then filters and the
 * rest, then the saved tracer, events and tracing_on: no step hooks more
 * than the one before it did), removes the state file and gives the top
 * lock back. Goes on after a failure and returns the first one (message in
 * @err); the state file then stays for the next repair. Nothing is left to
 * restore in memory afterwards, whatever the result.
 */
int pd_tfs_restore(struct pd_tfs *t, char *err, size_t errlen);
/* The files the last restore left as another tool had set them since ("" when none). */
const char *pd_tfs_skipped(const struct pd_tfs *t);

/*
 * Called after every write to tracefs with the path relative to the tracefs
 * mount, the value, whether it was appended, the write's result and how
 * long the open, write and close took (ns, CLOCK_MONOTONIC). For tests that
 * check the order of writes and for the debug log; NULL turns it off.
 */
typedef void (*pd_tfs_observer_fn)(void *ctx, const char *rel, const char *value, bool append,
				   int result, uint64_t ns);
void pd_tfs_set_observer(struct pd_tfs *t, pd_tfs_observer_fn fn, void *ctx);

/* Whether anything is saved or created (a restore has work to do). */
bool pd_tfs_dirty(const struct pd_tfs *t);

#endif
