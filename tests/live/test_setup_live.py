#!/usr/bin/env python3
"""The live daemon keeps its tracefs setup, on this machine's real kernel (syscall mode).

- Another tool takes the setup apart (tracing_on 0 written in our instance, as a second
  tracer or `trace-cmd reset` would): within the setup check's period (10 s) the daemon says so,
  sets capture up again and counts it (/api/v1/status capture.setup_lost), and records forks again.
- A capture restart (a reload that changes the buffers) raises the unit's watchdog timeout for
  its duration and gives it back (sd_notify WATCHDOG_USEC=, seen on a fake NOTIFY_SOCKET).
- --buffer-total-mb caps every CPU's ring buffer together: the instance's buffer_size_kb is the
  capped size, and the status says so.
Exit 77 (skip) where tracefs is missing, not writable, or has no syscall events.
Usage: test_setup_live.py PTESCOPED FORKN
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

daemon, forkn = sys.argv[1:3]
T = os.environ.get("PTESCOPE_TRACEFS", "/sys/kernel/tracing")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


def skip(why):
    print("skip: " + why)
    sys.exit(77)


if not os.path.isdir(os.path.join(T, "instances")):
    skip("no tracefs instances at " + T)
probe = os.path.join(T, "instances", "ptescope-probe-%d" % os.getpid())
try:
    os.mkdir(probe)
    os.rmdir(probe)
except OSError:
    skip("tracefs not writable")
if not os.path.isdir(os.path.join(T, "events/syscalls/sys_enter_clone")):
    skip("no syscall events")

inst = "ptescope-setup-%d" % os.getpid()
cpus = os.sysconf("SC_NPROCESSORS_CONF")


def status(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/status" % port, timeout=10) as r:
        return json.load(r)


def read_or_empty(path):
    # our instance is gone for a moment while the daemon sets it up again
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(pred, secs, step=0.2):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


with tempfile.TemporaryDirectory() as d:
    notify = os.path.join(d, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(notify)
    ns.settimeout(0.2)
    conf = os.path.join(d, "ptescoped.conf")
    with open(conf, "w") as f:
        f.write("buffer-total-mb = 1\nbuffer-kb = 4096\n")
    log = open(os.path.join(d, "log"), "w+")
    env = dict(os.environ, NOTIFY_SOCKET=notify, WATCHDOG_USEC="20000000")
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([daemon, "--config", conf, "--capture", "syscall",
                          "--db", os.path.join(d, "db"), "--state-file", os.path.join(d, "st", "state"),
                          "--lock-dir", os.path.join(d, "locks"), "--instance", inst,
                          "--listen", "127.0.0.1:0", "--poll-ms", "100"],
                         stderr=log, env=env)
    messages = []

    def drain():
        while True:
            try:
                messages.append(ns.recv(4096).decode())
            except socket.timeout:
                return

    def logtext():
        log.flush()
        log.seek(0)
        return log.read()

    try:
        ready = wait_for(lambda: re.search(r"ready:.*listening on 127\.0\.0\.1:(\d+)", logtext()), 60)
        if not ready:
            print(logtext())
            check(False, "the daemon got ready")
            sys.exit(1)
        port = int(ready.group(1))
        top_buffer = os.path.join(T, "instances", inst, "buffer_size_kb")
        want = max(1024 // cpus, 128)
        st = status(port)["capture"]
        # (the kernel rounds a size up to whole pages of its own)
        check(st["buffer_kb"] == want and st["buffer_capped"] and
              0 <= int(open(top_buffer).read().split()[0]) - want <= 8,
              "--buffer-total-mb 1 on %d CPUs: %s KiB per CPU (asked 4096), status capped=%s, "
              "the instance's buffer_size_kb %s" % (cpus, st["buffer_kb"], st["buffer_capped"],
                                                     open(top_buffer).read().strip()))

        # another tool stops our instance's tracing
        with open(os.path.join(T, "instances", inst, "tracing_on"), "w") as f:
            f.write("0")
        t0 = time.monotonic()
        lost = wait_for(lambda: status(port)["capture"]["setup_lost"] >= 1, 30, 0.5)
        took = time.monotonic() - t0
        st = status(port)["capture"]
        check(bool(lost) and "tracing_on" in (st["setup_lost_reason"] or "") and
              "changed by another tool" in logtext(),
              "tracing_on 0 written in our instance: seen after %.1f s, setup_lost %s (%s)"
              % (took, st["setup_lost"], st["setup_lost_reason"]))
        check(wait_for(lambda: read_or_empty(os.path.join(T, "instances", inst, "tracing_on"))
                       .strip() == "1", 20),
              "... and set up again: our instance traces again")
        before = status(port)["forks_stored"]
        subprocess.run([forkn, "5"], check=True, capture_output=True)
        check(wait_for(lambda: status(port)["forks_stored"] >= before + 5, 30, 0.5),
              "... and records forks again (%s -> %s)" % (before, status(port)["forks_stored"]))

        # a reload that rebuilds the capture: the watchdog timeout is raised, then given back
        drain()
        messages.clear()
        with open(conf, "w") as f:
            f.write("buffer-total-mb = 2\nbuffer-kb = 4096\n")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in logtext(), 60)
        time.sleep(0.5)
        drain()
        text = "\n".join(messages)
        raised = text.find("WATCHDOG_USEC=300000000")
        back = text.find("WATCHDOG_USEC=20000000")
        check(raised >= 0 and back > raised,
              "a capture restart on reload raises the watchdog timeout (WATCHDOG_USEC=300 s) "
              "and gives it back (20 s) after: %r" % [m for m in messages if "USEC" in m])
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    check(p.returncode == 0, "SIGTERM: exit %s" % p.returncode)
    check(not os.path.exists(os.path.join(T, "instances", inst)), "our instance is gone after the stop")

sys.exit(1 if failures else 0)
