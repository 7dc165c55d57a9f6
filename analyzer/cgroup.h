/* SPDX-License-Identifier: MIT */
/*
 * Where a fork came from: the parent's cgroup path, as /proc/PID/cgroup
 * gives it, and what that path says of the systemd unit and the container
 * that ran the parent. Pure string work on the path: no /proc reading here
 * (the daemon's proccg.c reads the file).
 *
 * Fed the text of /proc/PID/cgroup (live) or a stored path; feeds the fork
 * object (report.c), the store's columns and the metrics' opt-in label.
 * Paths are short (a few hundred bytes): everything is one pass.
 */
#ifndef PTESCOPE_CGROUP_H
#define PTESCOPE_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The cgroup path of the text of a /proc/PID/cgroup file into @out: the
 * unified hierarchy's ("0::PATH"), else the name=systemd hierarchy's of a v1
 * or hybrid host, else the first line's. Cut to @len - 1 bytes. Returns 0, or
 * -ENOENT when the text names none.
 */
int pt_cgroup_from_proc(const char *text, char *out, size_t len);

/*
 * The systemd unit in cgroup @path: its innermost component that ends in
 * ".service" or ".scope" ("redis-server.service", "docker-ID.scope",
 * "session-3.scope"), copied to @out. Returns true when there is one.
 */
bool pt_cgroup_unit(const char *path, char *out, size_t len);

/*
 * The container id in cgroup @path: the 64 hex digits of its innermost
 * component that holds them (docker's "docker-ID.scope" or "/docker/ID",
 * containerd's "cri-containerd-ID.scope", CRI-O's "crio-ID.scope", podman's
 * "libpod-ID.scope"), lowercase, in @out (at least 65 bytes). Returns true
 * when there is one.
 */
bool pt_cgroup_container(const char *path, char *out, size_t len);

#endif
