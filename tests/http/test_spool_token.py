#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Token files and the upload spool (issue 23, item 10), against the real
daemon (capture off):
  - a token file that group or others may read or write, or that neither
    root nor we own, is refused at start with one line naming it;
  - an existing spool directory that is a symlink, not ours, or open to
    group or others is refused at start (one line), never used;
  - the spool is bounded: uploads in flight and waiting count against
    --spool-max-files and --spool-max-mb; past either, 503 at once (from
    Content-Length) or when the streamed body passes it, and the room comes
    back when an upload ends.
Needs root for chown (exits 77 without it)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from common import check, finish, free_port, get_json, scratch, sigterm, upload, FIXTURES

daemon = sys.argv[1]
if os.geteuid() != 0:
    print("SKIP: needs root (chown)")
    sys.exit(77)
d = scratch("spool-token")
token = "spool-token-test-0123456789"
tok = os.path.join(d, "token")


def write_token(mode, uid=0):
    with open(tok, "w") as f:
        f.write(token + "\n")
    os.chmod(tok, mode)
    os.chown(tok, uid, 0)


def start(db, *extra, wait=True):
    port = free_port()
    log = os.path.join(d, "daemon.log")
    p = subprocess.Popen([daemon, "--capture", "off", "--db", db, "--listen",
                          "127.0.0.1:%d" % port, "--token-file", tok, "--state-file",
                          os.path.join(d, "state")] + list(extra),
                         stderr=open(log, "wb"))
    if not wait:
        return p, port, log
    end = time.monotonic() + 30
    while time.monotonic() < end and p.poll() is None:
        try:
            if get_json(port, "/healthz", timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    return p, port, log


def refused_at_start(db, what, *extra):
    p, _, log = start(db, *extra, wait=False)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    with open(log) as f:
        errs = [l for l in f.read().splitlines() if "error" in l]
    check(rc == 1 and len(errs) == 1 and what in errs[0],
          "refused at start (exit %s): %s" % (rc, errs))
    return errs


def stop(p):
    return sigterm(p)


db = os.path.join(d, "forks.db")
# token files
for mode, uid in ((0o644, 0), (0o640, 0), (0o604, 0), (0o620, 0), (0o600, 65534)):
    write_token(mode, uid)
    refused_at_start(db, "token file %s" % tok)
write_token(0o600)
p, port, _ = start(db)
check(p.poll() is None, "a 0600 root token file is taken")
stop(p)

# the spool directory next to the database
spool = db + "-uploads"
shutil.rmtree(spool, ignore_errors=True)
other = os.path.join(d, "elsewhere")
os.makedirs(other, mode=0o700, exist_ok=True)
os.symlink(other, spool)
refused_at_start(db, "upload spool %s" % spool)
os.unlink(spool)
os.makedirs(spool)
os.chmod(spool, 0o755)
refused_at_start(db, "upload spool %s" % spool)
os.chmod(spool, 0o700)
os.chown(spool, 65534, 0)
with open(os.path.join(spool, "job-0000000000000000001-000000.trace"), "wb") as f:
    f.write(b"planted")
errs = refused_at_start(db, "upload spool %s" % spool)
check(os.path.exists(os.path.join(spool, "job-0000000000000000001-000000.trace")),
      "the planted job is left alone, not replayed")
shutil.rmtree(spool)

# the bounds: 2 files, 1 MiB
trace = open(os.path.join(FIXTURES, "vm", "fork-path-text.txt"), "rb").read()
auth = {"Authorization": "Bearer " + token}
p, port, log = start(db, "--spool-max-files", "2", "--spool-max-mb", "1")
st, _, body = upload(port, "/api/v1/replays?name=big", b"x" * (2 << 20), auth)
check(st == 503 and b"spool-max-mb" in body, "an upload announcing 2 MiB: 503 at once (%d %s)"
      % (st, body[:120]))
# two uploads in flight (headers and part of the body sent) hold both files
held = []
for i in range(2):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/v1/replays?name=slow%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
              % (i, token.encode(), len(trace)) + trace[:1000])
    held.append(s)
time.sleep(0.5)
st, _, body = upload(port, "/api/v1/replays?name=third", trace, auth)
check(st == 503 and b"spool-max-files" in body,
      "a third upload while two arrive: 503 (%d %s)" % (st, body[:120]))
st, status = get_json(port, "/api/v1/status")
sp = status.get("http", {}).get("spool") or {}
check(sp.get("files") == 2 and sp.get("max_files") == 2 and sp.get("max_bytes") == 1 << 20,
      "/api/v1/status http.spool: %s" % sp)
for s in held:
    s.close()  # cut before their end: never acknowledged, their room comes back
time.sleep(1)
st, _, body = upload(port, "/api/v1/replays?name=after", trace, auth)
check(st == 202, "once they are gone, an upload is taken (%d %s)" % (st, body[:120]))
# a streamed body (no Content-Length) that passes the byte bound
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"POST /api/v1/replays?name=stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
          % token.encode())
chunk = b"y" * 65536
try:
    for _ in range(40):
        s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    s.sendall(b"0\r\n\r\n")
except OSError:
    pass
resp = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        resp += b
except OSError:
    pass
s.close()
check(resp.startswith(b"HTTP/1.1 503") and b"spool-max-mb" in resp,
      "a streamed upload passing 1 MiB: 503 (%s)" % resp[:160])
end = time.monotonic() + 30
while time.monotonic() < end:
    sp = get_json(port, "/api/v1/status")[1].get("http", {}).get("spool") or {}
    if sp.get("files") == 0 and sp.get("bytes") == 0:
        break
    time.sleep(0.2)
check(sp.get("files") == 0 and sp.get("bytes") == 0,
      "all room back once the replays are done: %s" % sp)
check(stop(p) == 0, "stops cleanly")
finish()
