/* SPDX-License-Identifier: MIT */
/*
 * The start's tracefs repair under our instance's lock (repair.h).
 */
#include "repair.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tracefs.h>

#include "config.h"
#include "log.h"
#include "tfs.h"
#include "tfs_lock.h"

int pd_repair_tracefs(const struct pd_config *cfg, struct pd_tfs_lock **lock)
{
	const char *dir = cfg->tracefs ? cfg->tracefs : tracefs_tracing_dir();
	struct stat st;
	bool have_state = !lstat(cfg->state_file, &st) || errno != ENOENT;
	char err[1024], what[128];
	struct pd_tfs *t;
	int ret;

	*lock = NULL;
	if (cfg->capture == PD_CAPTURE_OFF && !have_state)
		return 0;
	if (!dir || access(dir, F_OK)) {
		if (!have_state)
			return 0; /* nothing to undo; the capture says why it cannot run */
		pd_err("cannot repair tracefs: none is mounted%s%s, and the state file %s is left",
		       cfg->tracefs ? " at " : "", cfg->tracefs ? cfg->tracefs : "", cfg->state_file);
		return -ENOENT;
	}
	snprintf(what, sizeof(what), "instance-%s", cfg->instance);
	if ((ret = pd_tfs_lock_take(cfg->lock_dir, dir, what, lock, err, sizeof(err)))) {
		pd_err("%s%s", err,
		       ret == -EBUSY ? ": another ptescoped runs with this tracefs instance "
				       "(--instance names another)"
				     : "");
		return ret;
	}
	if ((ret = pd_tfs_new(dir, cfg->state_file, &t))) {
		pd_err("cannot open tracefs at %s: %s", dir, strerror(-ret));
		return ret;
	}
	pd_tfs_set_lock_dir(t, cfg->lock_dir);
	ret = pd_tfs_repair(t, cfg->instance, err, sizeof(err));
	pd_tfs_free(t);
	if (ret < 0)
		pd_err("tracefs repair: %s", err);
	else if (err[0])
		pd_notice("tracefs: %s", err);
	return ret < 0 ? ret : 0;
}
