#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Investigations over HTTP without a kernel: the real daemon with --capture off
(token, validation, 409 when capture cannot go deeper, status, metrics with
promtool), and the HTTP layer's hand-over to the core against http_driver's
stand-in core (JSON body and query parameters reach the core as parsed; 409 while
one is active; DELETE ends it). The investigation end to end (capture restarted
deeper, forks with passes, back to the default) is in the VM tests."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from common import Driver, check, finish, free_port, get_json, request, scratch, sigterm

daemon = sys.argv[1]
promtool = shutil.which("promtool")
d = scratch("investigations")
token = "inv-token-0123456789abcdef"
with open(os.path.join(d, "token"), "w") as f:
    f.write(token + "\n")
os.chmod(os.path.join(d, "token"), 0o600)  # private, or the daemon refuses it
AUTH = {"Authorization": "Bearer " + token}
JSON = dict(AUTH, **{"Content-Type": "application/json"})


def start_daemon(*extra):
    port = free_port()
    p = subprocess.Popen([daemon, "--capture", "off", "--db", os.path.join(d, "inv.db"),
                          "--listen", "127.0.0.1:%d" % port, "--state-file",
                          os.path.join(d, "state")] + list(extra),
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            if get_json(port, "/healthz")[0] == 200:
                return p, port
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("ptescoped did not start")


def stop_daemon(p):
    rc = sigterm(p)
    check(rc == 0, "ptescoped exits 0 on SIGTERM (%d)" % rc)


def post(port, query="", body=None, headers=AUTH):
    st, hd, b = request(port, "POST", "/api/v1/investigations" + query, body=body,
                        headers=headers)
    try:
        return st, json.loads(b)
    except ValueError:
        return st, {"_raw": b[:200]}


def error_of(j):
    return j.get("error", "")


# -- the real daemon, capture off ------------------------------------------------
p, port = start_daemon("--token-file", os.path.join(d, "token"),
                       "--investigation-max-s", "120")
st, j = post(port, "?detail=section&duration_s=10", headers={})
check(st == 401, "POST without a token: 401 (%d)" % st)
st, j = post(port, "?detail=section", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
check(st == 401, "POST with a wrong token: 401 (%d)" % st)
bad = [
    ("?detail=deep", None, "detail"),
    ("?detail=fork", None, "detail"),
    ("?duration_s=0", None, "duration_s"),
    ("?duration_s=abc", None, "duration_s"),
    ("?duration_s=86401", None, "duration_s"),
    ("?duration_s=121", None, "investigation-max-s"),
    ("?pid=0", None, "pid"),
    ("?pid=-4", None, "pid"),
    ("?pid=12x", None, "pid"),
    ("?comm=this-comm-is-too-long", None, "comm"),
    ("?colour=blue", None, "colour"),
    ("", b'{"detail": "pte", "duration_s": 121}', "investigation-max-s"),
    ("", b'{"detail": "pte", "bogus": 1}', "bogus"),
    ("", b'{"detail": ["pte"]}', "detail"),
    ("", b'{"detail": "pte"', "JSON"),
    ("", b'[1, 2]', "JSON object"),
]
for q, body, what in bad:
    st, j = post(port, q, body, JSON if body else AUTH)
    check(st == 400 and what in error_of(j),
          "POST %s%s: 400 naming %s (%d %s)" % (q, body.decode() if body else "", what, st,
                                                error_of(j)))
st, hd, b = request(port, "POST", "/api/v1/investigations", body=b"{" + b" " * 5000 + b"}",
                    headers=JSON)
check(st == 413, "a body over 4 KiB: 413 (%d)" % st)
valid = 0
for q, body in [("?detail=pte&duration_s=30", None), ("", b'{"detail": "section", "comm": "bash"}'),
                ("?detail=section&pid=1", None), ("", None)]:
    st, j = post(port, q, body, JSON if body else AUTH)
    valid += 1
    check(st == 409 and "graph" in error_of(j),
          "POST %s: 409, capture is not in graph mode (%d %s)" % (q or body, st, error_of(j)))
# concurrent requests are handed to the main loop one at a time, each answered;
# 8 at once: the control lane holds 8 waiting (a ninth may get 503 'too many
# requests waiting' when the server threads outrun its worker, as under TSan)
results = []


def one():
    st, j = post(port, "?detail=section&duration_s=5")
    results.append(st if st == 409 else (st, error_of(j)))


threads = [threading.Thread(target=one) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
valid += 8
check(results == [409] * 8, "8 concurrent POSTs: each answered 409 by the main loop (%s)" % results)
st, hd, b = request(port, "DELETE", "/api/v1/investigations/current")
check(st == 401, "DELETE without a token: 401 (%d)" % st)
st, hd, b = request(port, "DELETE", "/api/v1/investigations/current", headers=AUTH)
check(st == 404 and b"no investigation" in b, "DELETE with none active: 404 (%d)" % st)
st, hd, b = request(port, "PUT", "/api/v1/investigations", headers=AUTH)
check(st == 405 and "POST" in hd.get("allow", ""), "PUT: 405 with Allow (%d)" % st)
st, hd, b = request(port, "GET", "/api/v1/investigations/current")
check(st == 405 and hd.get("allow") == "DELETE", "GET .../current: 405 Allow DELETE (%d)" % st)
st, j = get_json(port, "/api/v1/investigations")
check(st == 200 and j.get("active", 1) is None and j.get("recent") == [] and
      j.get("max_s") == 120 and abs(j["budget"]["share"] - 0.05) < 1e-9 and
      j["budget"]["used"] == 0, "GET /api/v1/investigations: none active, cap 120 s (%s)" % j)
st, j = get_json(port, "/api/v1/investigations?x=1")
check(st == 400, "GET with an unknown parameter: 400 (%d)" % st)
st, j = get_json(port, "/api/v1/status")
inv = j.get("investigation", {})
check(st == 200 and inv.get("active") is False and "budget" in inv and "detail" not in inv,
      "status.investigation: inactive, with the budget (%s)" % inv)
check(j.get("capture", {}).get("mode") == "off", "capture stayed off")
st, hd, body = request(port, "GET", "/metrics")
text = body.decode()
samples = dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
check(samples.get("ptescope_investigation_active") == "0", "ptescope_investigation_active 0")
check(float(samples.get('ptescope_investigations_refused_total{why="capture"}', -1)) == valid,
      "refused{why=capture} counts the %d valid requests (%s)" % (valid, samples.get('ptescope_investigations_refused_total{why="capture"}')))
check(float(samples.get('ptescope_investigations_total{reason="api"}', -1)) == 0,
      "investigations_total{reason=api} 0")
check("ptescope_investigation_seconds_total" in samples, "ptescope_investigation_seconds_total")
for name in ("ptescope_investigation_active", "ptescope_investigations_total",
             "ptescope_investigation_seconds_total", "ptescope_investigations_refused_total"):
    check("# HELP %s " % name in text and "# TYPE %s " % name in text, "HELP/TYPE of " + name)
check(set(re.findall(r'ptescope_investigations_total\{reason="([^"]*)"', text)) == {"api", "auto"},
      "reason labels: api, auto")
check(set(re.findall(r'ptescope_investigations_refused_total\{why="([^"]*)"', text)) ==
      {"active", "budget", "cooldown", "capture", "error"}, "why labels: a fixed set")
if promtool:
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    check(r.returncode == 0, "promtool check metrics: %s" % (r.stdout + r.stderr).decode()[:300])
else:
    print("skip promtool (Debian package prometheus not installed)")
stop_daemon(p)

# -- no token file: investigations are off -----------------------------------------
p, port = start_daemon()
st, j = post(port, "?detail=section")
check(st == 403 and "no token" in error_of(j), "no token file: POST 403 (%d)" % st)
st, hd, b = request(port, "DELETE", "/api/v1/investigations/current", headers=AUTH)
check(st == 403, "no token file: DELETE 403 (%d)" % st)
stop_daemon(p)

# -- a bad config value is refused at start, naming the key --------------------------
r = subprocess.run([daemon, "--capture", "off", "--investigation-budget", "1.5"],
                   capture_output=True, text=True, timeout=30)
check(r.returncode == 2 and "--investigation-budget" in r.stderr,
      "--investigation-budget 1.5 refused (%d %s)" % (r.returncode, r.stderr.strip()))

# -- the HTTP layer's hand-over, against the stand-in core ----------------------------
db = os.path.join(d, "driver.db")
open(db, "w").close()
subprocess.run([os.environ["PTESCOPE"], "replay", "--db", db, os.path.join(
    os.environ["FIXTURES"], "forker-64mb-graph-partial.txt")], check=True,
    stdout=subprocess.DEVNULL)
srv = Driver(db, "--token-file", os.path.join(d, "token"))
st, j = post(srv.port, "?detail=pte")
check(st == 503 and "not offered" in error_of(j), "a core without investigations: 503 (%d)" % st)
srv.stop()
srv = Driver(db, "--token-file", os.path.join(d, "token"), "--investigations")
st, j = post(srv.port, "", b'{"detail": "pte", "duration_s": 45, "comm": "redis-server", '
             b'"pid": 4242}', JSON)
check(st == 202 and j.get("detail") == "pte" and j.get("duration_s") == 45 and
      j.get("comm") == "redis-server" and j.get("pid") == 4242,
      "JSON body reaches the core: 202 %s" % j)
st, j = post(srv.port, "?detail=section")
check(st == 409, "a second one while active: 409 (%d)" % st)
st, j = get_json(srv.port, "/api/v1/investigations")
check(st == 200 and j["active"]["pid"] == 4242, "GET shows the active one")
st, hd, b = request(srv.port, "DELETE", "/api/v1/investigations/current", headers=AUTH)
check(st == 200 and json.loads(b).get("active") is False, "DELETE ends it: 200 (%d)" % st)
st, hd, b = request(srv.port, "DELETE", "/api/v1/investigations/current", headers=AUTH)
check(st == 404, "DELETE again: 404 (%d)" % st)
st, j = post(srv.port, "?comm=bash&duration_s=5")
check(st == 202 and j.get("detail") == "section" and j.get("comm") == "bash" and
      j.get("duration_s") == 5 and j.get("pid") is None,
      "query parameters reach the core, detail defaults to section: %s" % j)
srv.stop()
finish()
