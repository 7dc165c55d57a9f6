#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End to end against the real daemon: ptescoped --capture off --replay TRACE
--listen 127.0.0.1:PORT serves the replayed forks, its metrics, and an upload
through the same replay path."""
import json
import os
import socket
import subprocess
import sys
import time

from common import check, finish, get_json, request, scratch, sigterm, upload, FIXTURES

daemon = sys.argv[1]
d = scratch("daemon")
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
token = "e2e-token-0123456789abcdef"
with open(os.path.join(d, "token"), "w") as f:
    f.write(token + "\n")
os.chmod(os.path.join(d, "token"), 0o600)  # private, or the daemon refuses it
p = subprocess.Popen([daemon, "--capture", "off", "--db", os.path.join(d, "e2e.db"),
                      "--replay", os.path.join(FIXTURES, "forker-200mb-graph.dat"),
                      "--listen", "127.0.0.1:%d" % port, "--token-file",
                      os.path.join(d, "token"), "--state-file", os.path.join(d, "state"),
                      "--comm-allow", "forker"], env=dict(os.environ, TMPDIR=d))


def wait_forks(n):
    for _ in range(100):
        try:
            st, j = get_json(port, "/api/v1/forks?limit=1000")
            if st == 200 and len(j["forks"]) >= n:
                return len(j["forks"])
        except OSError:
            pass
        if p.poll() is not None:
            return -1
        time.sleep(0.2)
    return len(j["forks"]) if st == 200 else -1


n = wait_forks(8)
check(n == 8, "ptescoped serves the 8 replayed forks (%d)" % n)
st, j = get_json(port, "/healthz")
check(st == 200, "/healthz of the real daemon")
st, j = get_json(port, "/api/v1/status")
check(st == 200 and "version" in j, "/api/v1/status of the real daemon")
st, hd, body = request(port, "GET", "/metrics")
check(st == 200 and b'ptescope_forks_total{comm="forker"} 0' in body and
      b"ptescope_replay_forks_total 8" in body and
      b'ptescope_replays_total{result="stored"} 1' in body,
      "/metrics: a replay is not this host's live forks (ptescope_forks_total 0), it counts "
      "in ptescope_replay_forks_total and ptescope_replays_total")
st, hd, b = upload(port, "/api/v1/replays?name=partial.txt",
                   open(os.path.join(FIXTURES, "forker-64mb-graph-partial.txt"), "rb").read(),
                   {"Authorization": "Bearer " + token})
check(st == 202 and "job_id" in json.loads(b), "upload to the real daemon: 202 (%d %s)" % (st, b[:100]))
n = wait_forks(9)
check(n > 8, "the uploaded trace's forks are stored (%d forks)" % n)
st, hd, body = request(port, "GET", "/metrics")
check(b'ptescope_forks_total{comm="forker"} 0' in body and
      b'ptescope_fork_duration_seconds_count{comm="forker"}' not in body and
      b'ptescope_replays_total{result="stored"} 2' in body,
      "/metrics: an upload leaves the live fork families as they were")
st, j = get_json(port, "/api/v1/forks?kind=all&limit=1000")
check(st == 200 and all(f["kind"] in ("fork", "thread", "spawn", None) for f in j["forks"]) and
      all("cgroup" in f and "systemd_unit" in f and "container_id" in f for f in j["forks"]),
      "forks carry kind, cgroup, systemd_unit and container_id")
st, hd, b = upload(port, "/api/v1/replays", b"x", {"Authorization": "Bearer nope"})
check(st == 401, "wrong token: 401")
rc = sigterm(p)
check(rc == 0, "ptescoped exits 0 on SIGTERM (%d)" % rc)
finish()
