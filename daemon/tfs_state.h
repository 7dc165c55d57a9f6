/* SPDX-License-Identifier: MIT */
/*
 * The tracefs state file (tfs.h): what one run of ptescoped saved before it
 * changed tracefs, what it wrote there, and the kprobe events it created, so
 * that a later run can undo exactly that after a crash. Written whole
 * through a temporary file and rename, fsync'ed; read back only when it can
 * be trusted (a regular file of our user, mode 0600, in a directory only we
 * can write) and only as far as it names files of an allow-list.
 *
 * Format (text, one item per line):
 *     ptescoped-tracefs-state 2
 *     boot BOOT_ID
 *     pid PID
 *     instance NAME            (while we have an instance)
 *     file REL HEX             (a saved file: the value to write back)
 *     ours REL HEX             (a value REL read back after one of our writes)
 *     pending REL              (a write to REL in flight: its result unknown)
 *     kprobe GROUP/EVENT       (a kprobe event this run created)
 * HEX is the value's bytes in hex, "-" when empty. Version 1 files (no ours,
 * pending nor kprobe lines) are read as every file pending and every event
 * of the group "ptescope" ours (what that version did).
 */
#ifndef PTESCOPED_TFS_STATE_H
#define PTESCOPED_TFS_STATE_H

#include <stdbool.h>
#include <stddef.h>

#define PD_TFS_MAX_SAVED 32
#define PD_TFS_MAX_OURS 32
#define PD_TFS_MAX_KPROBES 32
#define PD_TFS_MAX_VALUE 65536

struct pd_tfs_saved {
	char rel[128];
	char *value;		     /* normalised: what to write back */
	char *ours[PD_TFS_MAX_OURS]; /* normalised values read back after our writes */
	size_t nr_ours;
	bool pending; /* a write in flight (or a version 1 file): restore whatever it holds */
};

struct pd_tfs_state {
	int version;
	char boot[64];
	int pid;
	char instance[80]; /* "" at the top level */
	struct pd_tfs_saved saved[PD_TFS_MAX_SAVED];
	size_t nr_saved;
	char kprobe[PD_TFS_MAX_KPROBES][96]; /* GROUP/EVENT, oldest first */
	size_t nr_kprobes;
};

/* Frees the values and empties @s (its header stays). */
void pd_tfs_state_clear(struct pd_tfs_state *s);

/* Whether @rel (relative to the tracefs mount) is a file ptescoped may save and restore. */
bool pd_tfs_rel_allowed(const char *rel);
/* Whether @name is a valid instance name (1-64 of A-Z a-z 0-9 _ - .; not "." nor ".."). */
bool pd_tfs_instance_name_ok(const char *name);
/* Whether @key is GROUP/EVENT of a ptescope group ("ptescope" or "ptescope_...") and names only. */
bool pd_tfs_kprobe_key_ok(const char *key);

/* Writes @s to @path atomically (temporary file, fsync, rename). 0 or -errno. */
int pd_tfs_state_write(const char *path, const struct pd_tfs_state *s);

/*
 * Reads and validates the state file @path into @s (cleared first).
 * 0, -ENOENT when there is none, -EPERM when it cannot be trusted (owner,
 * mode, a symlink, its directory writable by others), -EINVAL when it is
 * malformed or names a file outside the allow-list; @err says which.
 */
int pd_tfs_state_read(const char *path, struct pd_tfs_state *s, char *err, size_t errlen);

#endif
