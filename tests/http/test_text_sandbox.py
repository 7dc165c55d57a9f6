#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Uploaded text traces are parsed in the sandboxed helper process, never in
the daemon (issue 23, item 11): the helper program is wrapped
($PTESCOPE_DAT_READER) to log how it is started; an uploaded text trace must
start it with --text and be stored with the forks `ptescope replay` finds in
process. A helper that crashes on the text (the wrapper kills itself with
SIGSEGV) costs one error line and the upload, never the daemon. Real daemon,
capture off."""
import json
import os
import subprocess
import sys
import time

from common import (check, finish, free_port, get_json, scratch, sigterm, sql, upload, FIXTURES,
                    PTESCOPE)

daemon = sys.argv[1]
d = scratch("text-sandbox")
real = os.path.join(os.path.dirname(PTESCOPE), "ptescope-dat-reader")
calls = os.path.join(d, "helper-calls")
wrapper = os.path.join(d, "helper.sh")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\necho \"$*\" >> %s\n"
            "if [ \"$1\" = --text ] && [ -n \"$PT_TEST_CRASH\" ]; then kill -SEGV $$; fi\n"
            "exec %s \"$@\"\n" % (calls, real))
os.chmod(wrapper, 0o755)
token = "text-sandbox-token-0123456789"
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write(token + "\n")
os.chmod(tok, 0o600)
auth = {"Authorization": "Bearer " + token}
text = os.path.join(FIXTURES, "vm", "full-text.txt")


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def healthz(port):
    try:
        return get_json(port, "/healthz", timeout=5)[0]
    except OSError:
        return 0


def run(name, crash):
    db = os.path.join(d, name + ".db")
    log = os.path.join(d, name + ".log")
    port = free_port()
    env = dict(os.environ, PTESCOPE_DAT_READER=wrapper)
    if crash:
        env["PT_TEST_CRASH"] = "1"
    p = subprocess.Popen([daemon, "--capture", "off", "--db", db, "--listen",
                          "127.0.0.1:%d" % port, "--token-file", tok, "--state-file",
                          os.path.join(d, name + ".state")], stderr=open(log, "wb"), env=env)
    text_of = lambda: open(log, "rb").read().decode(errors="replace")
    try:
        check(wait_for(lambda: healthz(port) == 200, 30), "%s: ready" % name)
        st, _, body = upload(port, "/api/v1/replays?name=full-text.txt",
                             open(text, "rb").read(), auth)
        check(st == 202, "%s: the text upload is accepted (%d)" % (name, st))
        wait_for(lambda: "replayed full-text.txt" in text_of() or
                 "replay full-text.txt:" in text_of(), 60)
        return db, text_of(), healthz(port), p.poll() is None
    finally:
        sigterm(p)


open(calls, "w").close()
db, log, health, alive = run("plain", False)
started = open(calls).read().splitlines()
check(any(l == "--text" for l in started),
      "the helper was started with --text for the text upload (%s)" % started)
want = json.loads(subprocess.run([PTESCOPE, "replay", "--format", "json", text],
                                 stdout=subprocess.PIPE, check=True).stdout)["forks"]
got = sql(db, "SELECT child_pid, vmas, ptes FROM fork ORDER BY id")
check(len(want) > 0 and sorted(got) == sorted((f["child_pid"], f["vmas"], f["ptes"]) for f in want),
      "stored the forks the in-process replay finds (%d, %d)" % (len(got), len(want)))

open(calls, "w").close()
db, log, health, alive = run("crash", True)
errs = [l for l in log.splitlines() if "full-text.txt" in l and "error" in l]
check(len(errs) == 1 and "reader died" in errs[0],
      "a helper crashing on the text: one error line (%s)" % errs)
check(alive and health == 200, "the daemon is unharmed (healthz %d)" % health)
check(sql(db, "SELECT count(*) FROM fork")[0][0] == 0, "nothing of it stored")
check(not [f for f in os.listdir(db + "-uploads") if f.startswith("job-")],
      "the upload the parser choked on is not kept")
finish()
