#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's health follows its database writes (issue 23, item 11): with
the database on a small tmpfs filled up, a replay's writes fail, and within
seconds /healthz answers 503, /metrics shows ptescope_store_healthy 0 and a
growing ptescope_store_write_failures_total, the log says so in one line;
once there is room again, /healthz is 200 within seconds and the next replay
is stored. The daemon keeps running throughout. Needs mount (root): exits 77
without it."""
import os
import signal
import subprocess
import sys
import time

from common import check, finish, free_port, get_json, request, scratch, sigterm, sql, FIXTURES

daemon = sys.argv[1]
d = scratch("store-health")
mnt = os.path.join(d, "mnt")
os.makedirs(mnt)
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt],
                  stderr=subprocess.DEVNULL).returncode:
    print("SKIP: cannot mount a tmpfs (not root?)")
    sys.exit(77)


def metric(port, name):
    st, _, body = request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def healthz(port):
    try:
        return request(port, "GET", "/healthz", timeout=5)[0]
    except OSError:
        return 0


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def fill(path):
    """Writes zeros to @path until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


conf = os.path.join(d, "ptescoped.conf")
db = os.path.join(mnt, "forks.db")
log = os.path.join(d, "daemon.log")
port = free_port()
with open(conf, "w") as f:
    f.write("capture = off\n")
p = subprocess.Popen([daemon, "--config", conf, "--db", db, "--listen", "127.0.0.1:%d" % port,
                      "--state-file", os.path.join(d, "state")], stderr=open(log, "wb"))
try:
    check(wait_for(lambda: healthz(port) == 200, 30), "healthy once ready")
    filler = os.path.join(mnt, "filler")
    fill(filler)
    # a replay queued by a reload: its writes find the disk full
    with open(conf, "a") as f:
        f.write("replay = %s\n" % os.path.join(FIXTURES, "forker-200mb-graph.dat"))
    t0 = time.monotonic()
    p.send_signal(signal.SIGHUP)
    seen = wait_for(lambda: healthz(port) == 503, 10)
    check(seen, "/healthz answers 503 after the first failed write (%.1f s)"
          % (time.monotonic() - t0))
    check(metric(port, "ptescope_store_healthy") == 0, "ptescope_store_healthy 0 meanwhile")
    fails = metric(port, "ptescope_store_write_failures_total") or 0
    check(fails >= 1, "ptescope_store_write_failures_total counts it (%g)" % fails)
    st, status = get_json(port, "/api/v1/status")
    dbs = status.get("database", {})
    check(st == 200 and dbs.get("healthy") is False and dbs.get("write_failures", 0) >= 1,
          "/api/v1/status database: %s" % dbs)
    time.sleep(2)
    check(healthz(port) == 503, "still 503 while the disk stays full (writes are tried again)")
    with open(log, "rb") as f:
        text = f.read().decode(errors="replace")
    check(text.count("writes are failing") == 1,
          "one log line says writes are failing (%d)" % text.count("writes are failing"))
    check(p.poll() is None, "the daemon keeps running")

    os.unlink(filler)
    t0 = time.monotonic()
    check(wait_for(lambda: healthz(port) == 200, 10),
          "/healthz 200 again once writes succeed (%.1f s)" % (time.monotonic() - t0))
    check(metric(port, "ptescope_store_healthy") == 1, "ptescope_store_healthy 1 again")
    small = os.path.join(FIXTURES, "vm", "fork-path.dat")
    with open(conf, "a") as f:
        f.write("replay = %s\n" % small)
    p.send_signal(signal.SIGHUP)
    check(wait_for(lambda: ("replayed %s:" % small).encode() in open(log, "rb").read(), 30),
          "the next replay is stored")
    with open(log, "rb") as f:
        text = f.read().decode(errors="replace")
    check("writes succeed again" in text, "the recovery is logged")
finally:
    rc = sigterm(p)
    check(rc == 0, "exits 0 on SIGTERM (%d)" % rc)
    n = sql(db, "SELECT count(*) FROM source WHERE completed_wall_ns IS NOT NULL")[0][0]
    check(n >= 1, "the replay after the recovery is stored (%d complete sources)" % n)
    with open(log, "rb") as f:
        sys.stdout.write(f.read().decode(errors="replace")[-3000:])
    subprocess.run(["umount", mnt])
finish()
