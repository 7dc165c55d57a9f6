#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Uploads (token, cap, streaming to a temporary file, the replay path), static
files (no escape from the web root), and serving under hostile load: many idle
connections, slow clients, per-IP and global limits (eviction of the oldest
idle, 503 when none can be evicted), the body deadline, the inactivity
timeout, while another client is still served."""
import glob
import json
import os
import socket
import time

from common import (Driver, check, finish, get_json, raw, request, scratch, sql, status_of,
                    synth_db, upload, FIXTURES, PTESCOPE)

d = scratch("serving")
tmp = os.path.join(d, "tmp")
os.makedirs(tmp)
db = os.path.join(d, "serving.db")
synth_db(db, 300)
token = "s3cret-token-0123456789abcdef"
tokf = os.path.join(d, "token")
with open(tokf, "w") as f:
    f.write(token + "\n")
os.chmod(tokf, 0o600)  # a token file must be private (the daemon refuses others)
dat = os.path.join(FIXTURES, "forker-200mb-graph.dat")
txt = os.path.join(FIXTURES, "forker-64mb-graph-partial.txt")
cap = os.path.getsize(dat) + 4096
log = os.path.join(d, "submits")
srv = Driver(db, "--token-file", tokf, "--max-upload", str(cap), "--ptescope", PTESCOPE,
             "--submit-log", log, env={"TMPDIR": tmp})
P = srv.port
auth = {"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
body = open(dat, "rb").read()

# -- uploads
before = sql(db, "SELECT count(*) FROM fork")[0][0]
st, hd, b = upload(P, "/api/v1/replays?name=forker.dat", body,
                    {"Content-Type": "application/octet-stream"})
check(st == 401 and "error" in json.loads(b) and "bearer" in hd.get("www-authenticate", "").lower(),
      "upload without a token: 401 with WWW-Authenticate")
st, hd, b = upload(P, "/api/v1/replays", body,
                    headers={"Authorization": "Bearer " + token[:-1] + "X"})
check(st == 401, "upload with a wrong token (same length): 401")
st, hd, b = upload(P, "/api/v1/replays", body,
                    headers={"Authorization": "Bearer " + token + "X"})
check(st == 401, "upload with a longer token: 401")
check(sql(db, "SELECT count(*) FROM fork")[0][0] == before, "refused uploads stored nothing")
st, hd, b = upload(P, "/api/v1/replays?name=forker.dat", body, auth)
j = json.loads(b)
check(st == 202 and j["job_id"] >= 1 and j["bytes"] == len(body) and j["name"] == "forker.dat",
      "upload with the token: 202, job id, byte count")
added = sql(db, "SELECT count(*) FROM fork")[0][0] - before
check(added == 8, "the upload went through ptescope replay --db: 8 forks stored (%d)" % added)
st, j = get_json(P, "/api/v1/forks?comm=forker&min_us=90000")
check(st == 200 and len(j["forks"]) == 8, "uploaded forks are served by /api/v1/forks")
st, j = get_json(P, "/metrics")
st, hd, m = request(P, "GET", "/metrics")
check(b'ptescope_forks_total{comm="other"} %d' % before in m,
      "uploaded forks are not this host's live forks: ptescope_forks_total unchanged (%d)" % before)
st, hd, b = upload(P, "/api/v1/replays?name=partial.txt", open(txt, "rb").read(),
                    headers=auth)
check(st == 202, "text trace upload: 202")
big = b"x" * (cap + 1)
st, hd, b = upload(P, "/api/v1/replays", big, auth)
check(st == 413 and "limit" in json.loads(b)["error"], "upload over the cap (Content-Length): 413")
resp = raw(P, b"POST /api/v1/replays HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           token.encode() + b"\r\nContent-Length: %d\r\n\r\n" % (cap + 1))
check(status_of(resp) == 413, "over the cap without Expect: 413 before the body is sent")


def chunked(data, n=65536):
    out = b""
    for i in range(0, len(data), n):
        c = data[i:i + n]
        out += b"%x\r\n" % len(c) + c + b"\r\n"
    return out + b"0\r\n\r\n"


resp = raw(P, b"POST /api/v1/replays HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(big), timeout=20)
check(status_of(resp) == 413, "chunked upload over the cap: 413 (got %d)" % status_of(resp))
st, hd, b = upload(P, "/api/v1/replays?name=junk", b"not a trace\n" * 100,
                    headers=auth)
check(st == 400 and "error" in json.loads(b), "upload that is not a trace: 400 from the replay")
st, hd, b = upload(P, "/api/v1/replays", b"", auth)
check(st == 400, "empty upload: 400")
st, hd, b = upload(P, "/api/v1/replays?name=../../etc/x", b"x", auth)
check(st == 400 and "name" in json.loads(b)["error"], "upload name with '/': 400 naming name")
subs = open(log).read().split("\n")
check(all(l.split()[2].startswith(tmp + "/ptescoped-upload-") for l in subs if l),
      "uploads were handed to submit_replay as files in TMPDIR")
check(glob.glob(os.path.join(tmp, "*")) == [], "no temporary upload file is left behind")
srv.stop()

srv = Driver(db, env={"TMPDIR": tmp})
st, hd, b = upload(srv.port, "/api/v1/replays", body, auth)
check(st == 403, "uploads without a token file configured: 403")
srv.stop()

# -- static files: nothing outside the web root
web = os.path.join(d, "web")
os.makedirs(os.path.join(web, "sub"))
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<html>ptescope</html>")
with open(os.path.join(web, "app.js"), "w") as f:
    f.write("console.log(1)")
with open(os.path.join(d, "secret.txt"), "w") as f:
    f.write("TOPSECRET")
os.symlink(os.path.join(d, "secret.txt"), os.path.join(web, "link-out"))
os.symlink("../secret.txt", os.path.join(web, "sub", "rel-out"))
srv = Driver(db, "--web-root", web)
P = srv.port
st, hd, b = request(P, "GET", "/")
check(st == 200 and b == b"<html>ptescope</html>" and hd["content-type"].startswith("text/html"),
      "/ serves index.html")
st, hd, b = request(P, "GET", "/app.js")
check(st == 200 and "javascript" in hd["content-type"], "/app.js with a JavaScript type")
st, hd, b = request(P, "GET", "/sub/")
check(st == 404, "a directory without index.html: 404")
for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/../../secret.txt",
             "/sub/%2e%2e/%2e%2e/secret.txt", "/link-out", "/sub/rel-out", "//etc/passwd",
             "/..", "/....//secret.txt", "/sub/..%5c..%5csecret.txt"):
    resp = raw(P, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(status_of(resp) in (400, 404) and b"TOPSECRET" not in resp and b"root:" not in resp,
          "traversal %s: refused (%d)" % (path, status_of(resp)))
srv.stop()

# -- many idle connections and slow clients, while another client is served
srv = Driver(db, "--max-conn", "600", "--max-per-ip", "500", "--timeout", "30")
P = srv.port
idle = []
for i in range(300):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", P))
    idle.append(s)
slow = []
for i in range(50):  # slowloris: a request line and a header, never finished
    s = socket.socket()
    s.bind(("127.0.0.3", 0))
    s.connect(("127.0.0.1", P))
    s.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    slow.append(s)
time.sleep(0.5)
worst = 0.0
for i in range(20):
    t = time.monotonic()
    st, j = get_json(P, "/api/v1/stats" if i % 2 else "/healthz", timeout=5)
    worst = max(worst, time.monotonic() - t)
    if st != 200:
        break
check(st == 200 and worst < 1.0, "300 idle + 50 slow connections: 20 requests served, "
      "slowest %.0f ms" % (worst * 1000))
for s in slow:
    s.sendall(b"a\r\n\r\n")
got = sum(1 for s in slow[:10] if status_of(s.recv(4096)) == 200)
check(got == 10, "slow clients that finish are answered (%d/10)" % got)
for s in idle + slow:
    s.close()
srv.stop()

# per-IP and global limits: a new connection evicts the one waiting longest for a
# request head (of its address, or any); 503 only when none waits (issue 12)
srv = Driver(db, "--max-conn", "40", "--max-per-ip", "8", "--timeout", "30", "--threads", "2")
P = srv.port
mine = []
for i in range(8):
    mine.append(socket.create_connection(("127.0.0.1", P), source_address=("127.0.0.4", 0),
                                         timeout=5))
    time.sleep(0.02)
time.sleep(0.3)
s9 = socket.create_connection(("127.0.0.1", P), source_address=("127.0.0.4", 0), timeout=5)
try:
    s9.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    r9 = s9.recv(4096)
except OSError:
    r9 = b""
check(status_of(r9) == 200, "9th connection from one IP (limit 8) is served (%d)" % status_of(r9))
try:
    gone = mine[0].recv(1) == b""
except OSError:
    gone = True
check(gone, "... and the oldest idle connection of that IP was closed for it")
st, j = get_json(P, "/healthz")
check(st == 200, "another IP is still served while one IP is at its limit")
others = []
for i in range(40):
    others.append(socket.create_connection(("127.0.0.1", P),
                                           source_address=("127.0.%d.5" % (i // 4), 0)))
time.sleep(0.3)
r = raw(P, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", host="127.0.0.1", timeout=3)
check(status_of(r) == 200, "past the global limit (40) of idle connections a new one is served "
      "(%d)" % status_of(r))
for s in others + mine + [s9]:
    s.close()
time.sleep(0.5)
# bodies still coming (not evictable) fill the server: the next request gets a 503
bodies = []
for i in range(40):
    b = socket.create_connection(("127.0.0.1", P), source_address=("127.0.%d.6" % (i // 4), 0))
    b.sendall(b"POST /api/v1/investigations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
    bodies.append(b)
time.sleep(0.5)
r = raw(P, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", host="127.0.0.1", timeout=3)
check(status_of(r) == 503 and b"too many connections" in r,
      "40 bodies in progress (the limit): a new request gets a 503 (%d)" % status_of(r))
for b in bodies:
    b.close()
time.sleep(0.5)
st, j = get_json(P, "/healthz")
check(st == 200, "served again once connections are gone")
srv.stop()

# a body that stalls is cut after the body deadline (10 s without 4 KiB)
srv = Driver(db)
b = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
b.sendall(b"POST /api/v1/investigations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
t = time.monotonic()
try:
    while True:
        b.send(b" ")  # one byte a second: progress too slow
        time.sleep(1)
        if time.monotonic() - t > 16:
            break
except OSError:
    pass
el = time.monotonic() - t
check(9 < el < 14, "a body trickling one byte a second is cut after %.1f s (deadline 10 s)" % el)
b.close()
srv.stop()

# inactivity timeout
srv = Driver(db, "--timeout", "2")
s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
first = s.recv(4096)
t = time.monotonic()
try:
    eof = s.recv(1) == b""
except OSError:
    eof = True
el = time.monotonic() - t
check(status_of(first) == 200 and eof and 1.5 < el < 6,
      "kept-alive idle connection closed by the 2 s inactivity timeout (after %.1f s)" % el)
s.close()
srv.stop()
finish()
