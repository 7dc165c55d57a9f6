#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A spooled upload whose replay fails for any reason but the file itself is
kept and tried again (issue 23, item 11): with every fork insert failing (a
trigger stands in for a broken database), an accepted upload's replay fails
and its job stays in the spool; once inserts work again it is stored by a
later attempt and only then removed. An upload that is not a trace at all
is still removed at its first failure. The real daemon, capture off."""
import glob
import os
import sqlite3
import subprocess
import sys
import time

from common import check, finish, free_port, get_json, scratch, sigterm, sql, upload, FIXTURES

daemon = sys.argv[1]
d = scratch("upload-retry")
token = "upload-retry-token-0123456789"
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write(token + "\n")
os.chmod(tok, 0o600)
db = os.path.join(d, "forks.db")
spool = db + "-uploads"
log = os.path.join(d, "daemon.log")
auth = {"Authorization": "Bearer " + token}


def wait_for(pred, timeout):
    """Whether @pred held within @timeout s (a refused connection: not yet; the database
    file is made before the listener is up)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:  # the database exists before the listener does
            pass
        time.sleep(0.2)
    return False


def log_text():
    with open(log, "rb") as f:
        return f.read().decode(errors="replace")


def jobs():
    return sorted(glob.glob(os.path.join(spool, "job-*.trace")))


port = free_port()
p = subprocess.Popen([daemon, "--capture", "off", "--db", db, "--listen", "127.0.0.1:%d" % port,
                      "--token-file", tok, "--state-file", os.path.join(d, "state")],
                     stderr=open(log, "wb"))
try:
    check(wait_for(lambda: os.path.exists(db) and get_json(port, "/healthz")[0] == 200, 30),
          "ready")
    con = sqlite3.connect(db, timeout=30)
    con.execute("CREATE TRIGGER fail_fork BEFORE INSERT ON fork"
                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    con.commit()
    trace = open(os.path.join(FIXTURES, "vm", "fork-path-text.txt"), "rb").read()
    st, _, body = upload(port, "/api/v1/replays?name=good.txt", trace, auth)
    check(st == 202, "the upload is accepted (%d %s)" % (st, body[:100]))
    check(wait_for(lambda: "good.txt: kept in the spool" in log_text(), 30),
          "its replay fails on the database; the log says it is kept")
    check(len(jobs()) == 1, "the job is still in the spool (%s)" % jobs())
    check(sql(db, "SELECT count(*) FROM source WHERE completed_wall_ns IS NOT NULL")[0][0] == 0,
          "nothing stored meanwhile")
    con.execute("DROP TRIGGER fail_fork")
    con.commit()
    con.close()
    check(wait_for(lambda: "replayed good.txt" in log_text(), 40),
          "a later attempt stores it once the database takes writes")
    check(wait_for(lambda: not jobs(), 10), "and only then is the job removed (%s)" % jobs())
    n = sql(db, "SELECT count(*) FROM fork f JOIN source s ON s.id = f.source_id"
                " WHERE s.path = 'good.txt' AND s.completed_wall_ns IS NOT NULL")[0][0]
    check(n > 0, "its forks are in the database (%d)" % n)
    # the file itself refused: removed at once, never retried
    st, _, _ = upload(port, "/api/v1/replays?name=junk.bin", b"\x00junk" * 1000, auth)
    check(st == 202, "a file that is no trace is accepted first (%d)" % st)
    check(wait_for(lambda: "replay junk.bin" in log_text() and not jobs(), 30),
          "its replay fails on the file and the job is removed (%s)" % jobs())
    check("junk.bin: kept" not in log_text(), "a bad file is not kept for a retry")
finally:
    rc = sigterm(p)
    check(rc == 0, "exits 0 on SIGTERM (%d)" % rc)
    sys.stdout.write(log_text()[-2500:])
finish()
