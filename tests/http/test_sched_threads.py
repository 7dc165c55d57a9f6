#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's threads and their scheduling policy (/proc/PID/task/TID/stat): SCHED_BATCH
every one by default; with --sched idle SCHED_IDLE for the reading, storing and /proc
threads, and SCHED_BATCH still for the HTTP threads (libmicrohttpd's workers, the store
lanes, the reaper), so that the API answers on a host whose CPUs are all busy."""
import os
import subprocess
import sys
import time

from common import check, finish, free_port, get_json, scratch, sigterm

daemon = sys.argv[1]
BATCH, IDLE = 3, 5  # SCHED_BATCH, SCHED_IDLE
HTTP = ("MHD-worker", "pd-http-lane", "pd-http-reaper")


def threads(pid):
    """{tid: (name, policy)} of process @pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, int(fields[38]))  # field 41: policy
    return out


def run(extra):
    d = scratch("sched")
    port = free_port()
    p = subprocess.Popen([daemon, "--capture", "off", "--db", os.path.join(d, "s.db"),
                          "--listen", "127.0.0.1:%d" % port,
                          "--state-file", os.path.join(d, "state")] + extra,
                         env=dict(os.environ, TMPDIR=d))
    got = None
    for _ in range(150):
        try:
            st, _ = get_json(port, "/healthz")
            if st == 200:
                got = threads(p.pid)
                break
        except OSError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.2)
    check(sigterm(p) == 0, "%s: the daemon stops cleanly" % (extra or "default"))
    return p.pid, got or {}


pid, ts = run([])
check(len(ts) >= 4 and all(pol == BATCH for _, pol in ts.values()),
      "default: every thread SCHED_BATCH: %r" % sorted(ts.values()))
pid, ts = run(["--sched", "idle"])
http = [(n, pol) for n, pol in ts.values() if n in HTTP]
rest = [(tid, n, pol) for tid, (n, pol) in ts.items() if n not in HTTP]
check(any(n == "pd-http-lane" for n, _ in http) and any(n == "MHD-worker" for n, _ in http),
      "--sched idle: the HTTP threads are there: %r" % http)
check(all(pol == BATCH for _, pol in http), "--sched idle: the HTTP threads SCHED_BATCH: %r" % http)
check(any(tid == pid for tid, _, _ in rest) and any(n == "pd-live-writer" for _, n, _ in rest),
      "--sched idle: the main thread and the store writer are there: %r" % rest)
check(all(pol == IDLE for _, _, pol in rest),
      "--sched idle: every other thread SCHED_IDLE: %r" % rest)
finish()
