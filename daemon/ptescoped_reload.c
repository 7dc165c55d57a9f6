/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP: the configuration read again (config.h) and applied where it can
 * change live: log level, ingest's policy, the investigation policy, the
 * poll period, new replay files; the capture restarted when its mode,
 * detail, buffers, preemptions or pass probes changed; a warning for each
 * setting that needs a restart. Runs on the main loop.
 */
#include <pthread.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "ptescoped_internal.h"

/* SIGHUP: re-read the config file; apply what can change live. */
void reload(struct daemon *d)
{
	struct pd_config n;
	char err[1024];
	int ret;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)(pt_mono_ns() / 1000));
	ret = pd_config_load(&n, d->argc, d->argv, err, sizeof(err));
	if (ret) {
		pd_err("reload refused, keeping the running configuration: %s", err);
		if (ret < 0)
			pd_config_free(&n);
		sd_notify(0, "READY=1");
		return;
	}
	pd_log_set_level(n.log_level);
	pd_ingest_set_policy(d->ingest, n.slow_fork_us * 1000, n.retention_days,
			     n.max_db_mb * 1024 * 1024);
#define NEEDS_RESTART(field, name)                                                                 \
	do {                                                                                       \
		if ((n.field && d->cfg.field && strcmp(n.field, d->cfg.field)) ||                  \
		    (!n.field) != (!d->cfg.field))                                                 \
			pd_warn("reload: %s changed; takes effect at restart", name);              \
	} while (0)
	NEEDS_RESTART(db_path, "db");
	NEEDS_RESTART(listen, "listen");
	NEEDS_RESTART(web_root, "web-root");
	NEEDS_RESTART(token_file, "token-file");
	NEEDS_RESTART(allowed_hosts, "allowed-hosts");
	NEEDS_RESTART(instance, "instance");
	NEEDS_RESTART(state_file, "state-file");
	NEEDS_RESTART(lock_dir, "lock-dir");
	NEEDS_RESTART(tracefs, "tracefs");
	NEEDS_RESTART(kernel_btf, "kernel-btf");
#undef NEEDS_RESTART
	if (n.capture != d->cfg.capture || n.detail != d->cfg.detail ||
	    n.buffer_kb != d->cfg.buffer_kb || n.buffer_total_mb != d->cfg.buffer_total_mb ||
	    n.preemptions != d->cfg.preemptions ||
	    n.pass_probes != d->cfg.pass_probes || n.watermark_pct != d->cfg.watermark_pct) {
		/* the capture is rebuilt: tracefs restored, then set up anew */
		pthread_mutex_lock(&d->lock); /* core_status reads these two */
		d->cfg.capture = n.capture;
		d->cfg.detail = n.detail;
		pthread_mutex_unlock(&d->lock);
		d->cfg.buffer_kb = n.buffer_kb;
		d->cfg.buffer_total_mb = n.buffer_total_mb;
		d->cfg.force = n.force;
		d->cfg.preemptions = n.preemptions;
		d->cfg.pass_probes = n.pass_probes;
		d->cfg.watermark_pct = n.watermark_pct;
		pd_notice("reload: capture %s, detail %s: restarting capture",
			  pd_capture_mode_name(n.capture), pd_detail_name(n.detail));
		restart_begin(d);
		stop_capture(d);
		if (d->inv.active) {
			pthread_mutex_lock(&d->lock);
			pd_inv_finish(&d->inv, PD_INV_END_RELOAD, pt_mono_ns(), store_now_ns(),
				      cpu_ns());
			pthread_mutex_unlock(&d->lock);
			pd_notice("reload: the active investigation ended");
		}
		ret = start_capture(d);
		restart_end(d);
		set_capture_health(d, !ret);
	}
	d->cfg.investigation_max_s = n.investigation_max_s;
	d->cfg.auto_investigate_us = n.auto_investigate_us;
	d->cfg.auto_investigate_s = n.auto_investigate_s;
	d->cfg.investigation_budget = n.investigation_budget;
	d->cfg.investigation_cooldown_s = n.investigation_cooldown_s;
	pthread_mutex_lock(&d->lock);
	pd_inv_policy_from_config(&d->cfg, &d->inv.pol);
	d->cfg.slow_fork_us = n.slow_fork_us; /* core_status reads it */
	pthread_mutex_unlock(&d->lock);
	d->cfg.poll_ms = n.poll_ms; /* the main loop re-arms its timer */
	d->cfg.log_level = n.log_level;
	d->cfg.retention_days = n.retention_days;
	d->cfg.max_db_mb = n.max_db_mb;
	for (size_t i = 0; i < n.nr_replay; i++) {
		bool had = false;

		for (size_t k = 0; k < d->cfg.nr_replay; k++)
			had |= !strcmp(d->cfg.replay[k], n.replay[i]);
		if (!had && !pd_ingest_submit_replay(d->ingest, n.replay[i], NULL, false, NULL, err,
						     sizeof(err)))
			pd_info("reload: queued replay %s", n.replay[i]);
	}
	/* the file's list is the one to compare the next reload with (each file
	 * queued once, not hashed again at every reload) */
	for (size_t k = 0; k < d->cfg.nr_replay; k++)
		free(d->cfg.replay[k]);
	memcpy(d->cfg.replay, n.replay, n.nr_replay * sizeof(n.replay[0]));
	d->cfg.nr_replay = n.nr_replay;
	n.nr_replay = 0;
	pd_config_free(&n);
	pd_info("configuration reloaded");
	sd_notify(0, "READY=1");
}
