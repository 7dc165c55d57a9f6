#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile input against the real daemon (issue 12), capture off: a FIFO given
to --replay is refused without hanging the replay worker; an upload name with
a newline and terminal escapes is logged escaped (no forged line, no escape
byte in the log); a read-only database is refused at start; uploads answered
202 survive kill -9 and SIGTERM before their replay (spooled next to the
database, resumed at the next start, orphans removed)."""
import glob
import json
import os
import subprocess
import sys
import time

from common import check, finish, free_port, get_json, scratch, sigterm, sql, upload, FIXTURES

daemon = sys.argv[1]
d = scratch("hostile-daemon")
token = "hostile-token-0123456789abcdef"
with open(os.path.join(d, "token"), "w") as f:
    f.write(token + "\n")
os.chmod(os.path.join(d, "token"), 0o600)  # private, or the daemon refuses it


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
        st = 0
        while time.monotonic() < end and self.p.poll() is None:
            try:
                st, _ = get_json(self.port, "/healthz", timeout=2)
                if st == 200:  # 503 between the listener's start and ready
                    return st
            except OSError:
                pass
            time.sleep(0.1)
        return st

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
        rc = sigterm(self.p)
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
# -- 2. an upload named with bytes that are not UTF-8: 202, the name escaped (was a 500)
st, hd, b = upload(dm.port, "/api/v1/replays?name=%FF%FEup",
                   open(os.path.join(FIXTURES, "forker-200mb-graph.dat"), "rb").read(),
                   {"Authorization": "Bearer " + token})
check(st == 202 and json.loads(b).get("name") == "\\xff\\xfeup",
      "upload named %%FF%%FEup: 202, name escaped (%d %s)" % (st, b[:120]))
check(dm.wait_log(b" \\xff\\xfeup: "), "... its replay logged, the name escaped")
dm.stop()
log = dm.log_text()
lines = log.split(b"\n")
check(not any(l.startswith(b"ptescoped: error: forged") for l in lines),
      "no forged log line")
check(all(c >= 0x20 and c != 0x7f for l in lines for c in l),
      "no control characters in the log")
check(b"x\\x0aptescoped: error: forged\\x1b[2J\\x07" in log, "the name logged escaped: %r"
      % [l for l in lines if b"forged" in l][:1])

# -- 5. accepted uploads are durable: kill -9 (and SIGTERM) before their replay
big = os.path.join(d, "big.txt")  # keeps the replay worker busy for seconds
with open(big, "wb") as f:
    part = open(os.path.join(FIXTURES, "forker-64mb-graph-partial.txt"), "rb").read()
    for _ in range(60):
        f.write(part)
ups = [("partial.txt", part),
       ("forker.dat", open(os.path.join(FIXTURES, "forker-200mb-graph.dat"), "rb").read())]
tmpdir = d  # TMPDIR of the daemons: where earlier versions left their uploads
orphan = os.path.join(tmpdir, "ptescoped-upload-Ab12Cd")
with open(orphan, "w") as f:
    f.write("left by an earlier version")
for how in ("kill", "term"):
    db5 = os.path.join(d, "durable-%s.db" % how)
    spool = db5 + "-uploads"
    dm = Daemon("durable-" + how, "--db", db5, "--replay", big)
    check(dm.wait_ready() == 200, "daemon up, replaying a big file")
    sts = [upload(dm.port, "/api/v1/replays?name=" + n, b, {"Authorization": "Bearer " + token})[0]
           for n, b in ups]
    queued = len(glob.glob(os.path.join(spool, "job-*.trace")))
    if how == "kill":
        dm.p.kill()
        dm.p.wait()
    else:
        dm.stop("daemon stopped with uploads queued")
    check(sts == [202, 202] and queued == 2, "%s: 2 uploads answered 202, both in the spool (%s, %d)"
          % (how, sts, queued))
    if how == "term":
        check(dm.log_text().count(b"kept in the spool for the next start") == 2,
              "SIGTERM: each queued upload logged as kept for the next start")
    with open(os.path.join(spool, ".partial-XyZ123"), "w") as f:
        f.write("an upload cut in the middle")
    dm = Daemon("durable-%s-2" % how, "--db", db5)
    check(dm.wait_ready() == 200, "%s: restarted" % how)
    ok = False
    for _ in range(150):
        if not glob.glob(os.path.join(spool, "job-*")):
            ok = True
            break
        time.sleep(0.2)
    time.sleep(0.5)
    dm.stop()
    log = dm.log_text()
    srcs = sql(db5, "SELECT path FROM source WHERE kind = 'replay'")
    names = sorted(r[0] for r in srcs)
    check(ok and "forker.dat" in names and "partial.txt" in names,
          "%s: both uploads stored after the restart (%s)" % (how, names))
    check(log.count(b"resuming upload") == 2, "%s: the restart logs each resumed upload" % how)
    check(not os.path.exists(os.path.join(spool, ".partial-XyZ123")) and
          b"never acknowledged" in log, "%s: a partial upload is removed, and logged" % how)
    check(not glob.glob(os.path.join(spool, "*")), "%s: the spool is empty" % how)
check(not os.path.exists(orphan), "an orphaned ptescoped-upload-* of an earlier version in "
      "TMPDIR is removed at start")

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
