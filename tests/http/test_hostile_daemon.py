#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile input against the real daemon (issue 12), capture off, no root: a
FIFO given to --replay is refused without hanging the replay worker, and an
upload name with a newline and terminal escapes is logged escaped (no forged
line, no escape byte in the log)."""
import os
import signal
import socket
import subprocess
import sys
import time

from common import check, finish, get_json, scratch, upload, FIXTURES

daemon = sys.argv[1]
d = scratch("hostile-daemon")
token = "hostile-token-0123456789abcdef"
with open(os.path.join(d, "token"), "w") as f:
    f.write(token + "\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """ptescoped --capture off on a free port; stderr to a file (the log)."""

    def __init__(self, name, *args, env=None, prefix=(), state_dir=d):
        self.port = free_port()
        self.log = os.path.join(d, name + ".log")
        self.p = subprocess.Popen(
            list(prefix) + [daemon, "--capture", "off", "--listen", "127.0.0.1:%d" % self.port,
             "--token-file", os.path.join(d, "token"), "--state-file",
             os.path.join(state_dir, name + ".state")] + list(args),
            stderr=open(self.log, "wb"), env=dict(os.environ, TMPDIR=d, **(env or {})))

    def wait_ready(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.p.poll() is None:
            try:
                st, _ = get_json(self.port, "/healthz", timeout=2)
                return st
            except OSError:
                time.sleep(0.1)
        return 0

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read()

    def wait_log(self, what, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if what in self.log_text():
                return True
            time.sleep(0.1)
        return False

    def stop(self, what="ptescoped"):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -9
        check(rc == 0, "%s exits 0 on SIGTERM (%d)" % (what, rc))
        return rc


# -- 4. --replay FIFO: refused with a clear error; the worker and SIGTERM do not hang
fifo = os.path.join(d, "trace.fifo")
os.mkfifo(fifo)
db = os.path.join(d, "a.db")
dm = Daemon("fifo", "--db", db, "--replay", fifo,
            "--replay", os.path.join(FIXTURES, "forker-200mb-graph.dat"))
check(dm.wait_ready() == 200, "daemon with --replay FIFO is up")
check(dm.wait_log(b"replayed "), "the replay after the FIFO still runs")
check(b"not a regular file" in dm.log_text(), "the FIFO is refused: not a regular file")
dm.stop("daemon with --replay FIFO")

# -- 6. an upload name with a newline and terminal escapes is logged escaped
dm = Daemon("inject", "--db", db)
check(dm.wait_ready() == 200, "daemon up")
name = "x%0Aptescoped%3A%20error%3A%20forged%1B%5B2J%07"
st, hd, b = upload(dm.port, "/api/v1/replays?name=" + name,
                   open(os.path.join(FIXTURES, "forker-64mb-graph-partial.txt"), "rb").read(),
                   {"Authorization": "Bearer " + token})
check(st == 202, "upload with a hostile name: 202 (%d %s)" % (st, b[:100]))
check(dm.wait_log(b"forged"), "the upload's name is logged")
dm.stop()
log = dm.log_text()
lines = log.split(b"\n")
check(not any(l.startswith(b"ptescoped: error: forged") for l in lines),
      "no forged log line")
check(all(c >= 0x20 and c != 0x7f for l in lines for c in l),
      "no control characters in the log")
check(b"x\\x0aptescoped: error: forged\\x1b[2J\\x07" in log, "the name logged escaped: %r"
      % [l for l in lines if b"forged" in l][:1])

# -- 7. a database the daemon may only read (0444, not root): refused at start, clearly
ro = os.path.join(d, "ro")
os.makedirs(ro)
ro_db = os.path.join(ro, "ro.db")
subprocess.run([os.environ["PTESCOPE"], "replay", "-q", "--db", ro_db,
                os.path.join(FIXTURES, "forker-64mb-graph-partial.txt")], check=True,
               stdout=subprocess.DEVNULL)
os.chmod(ro_db, 0o444)
prefix = ()
if os.geteuid() == 0:  # 0444 does not stop root: run it as nobody
    for f in [ro] + [os.path.join(ro, x) for x in os.listdir(ro)]:
        os.chown(f, 65534, 65534)
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "token"), 0o644)
    prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
dm = Daemon("ro", "--db", ro_db, prefix=prefix, state_dir=ro)
try:
    rc = dm.p.wait(60)
except subprocess.TimeoutExpired:
    rc = None
    dm.p.kill()
    dm.p.wait()
check(rc not in (None, 0), "ptescoped refuses a read-only database at start (exit %s)" % rc)
check(b"cannot be written" in dm.log_text() and ro_db.encode() in dm.log_text(),
      "the error names the file: %r" % dm.log_text()[-300:])

finish()
