#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile input from a local user (issue 12), against the test driver over a
synthetic database: times outside what int64 nanoseconds hold, process names
that are not UTF-8, FIFOs in the web root, control characters in logged
strings and slow clients. Each answer must be the documented 4xx or a normal
answer, never a 500 or a hang; the CLI's options get the same checks."""
import os
import subprocess
import time

from common import (Driver, check, finish, get_json, request, scratch, sql, PTESCOPE, SYNTH)

d = scratch("hostile")
db = os.path.join(d, "hostile.db")
BAD = b"\xff\xfebad\\x"  # not UTF-8, and a backslash
BAD_JSON = "\\xff\\xfebad\\\\x"  # its escaped form (docs/api.md)
subprocess.run([SYNTH, db, "300", "8", "42", BAD], check=True)
srv = Driver(db)
P = srv.port

# -- 1. times outside int64 nanoseconds: a 400 naming the parameter
for q, name in (("since=9999-01-01T00:00:00Z", "since"), ("until=0000-01-01T00:00:00Z", "until"),
                ("since=2262-04-11T23:47:17Z", "since"),
                ("since=1677-09-21T00:12:43Z", "since")):
    for ep in ("forks", "stats", "histogram", "top", "timeseries"):
        st, j = get_json(P, "/api/v1/%s?%s" % (ep, q))
        check(st == 400 and j.get("error", "").startswith(name + ":") and
              "range" in j["error"], "%s?%s: 400 naming %s (%s)" % (ep, q, name, j))
for q in ("since=2262-04-11T23:47:16Z", "since=1677-09-21T00:12:44Z"):
    st, j = get_json(P, "/api/v1/stats?" + q)
    check(st == 200, "stats?%s: the edge of the range is accepted (%d)" % (q, st))
for opt in ("--since", "--until"):
    r = subprocess.run([PTESCOPE, "report", "--db", db, opt, "9999-01-01T00:00:00Z"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and opt in r.stderr and "range" in r.stderr and
          "runtime error" not in r.stderr,
          "ptescope report %s 9999-...: exit 2 naming it (%d: %s)"
          % (opt, r.returncode, r.stderr.strip()[:200]))

# -- 2. process names that are not UTF-8: exact in the store, escaped in JSON, matchable
n_bad = sql(db, "SELECT count(*) FROM fork WHERE CAST(parent_comm AS BLOB) = ?", BAD)[0][0]
check(n_bad == 30, "the store keeps the comm's bytes exactly (%d forks)" % n_bad)
st, j = get_json(P, "/api/v1/forks?limit=1000")
got = [f for f in j.get("forks", []) if f["parent_comm"] == BAD_JSON]
check(st == 200 and len(got) == n_bad and all(f["child_comm"] == BAD_JSON for f in got),
      "forks: 200, such comms escaped as %s (%d, %d)" % (BAD_JSON, st, len(got)))
st, j = get_json(P, "/api/v1/forks")
check(st == 200, "forks: the default newest page (%d)" % st)
st, j = get_json(P, "/api/v1/forks?limit=5&cursor=%d" % (got[0]["id"] + 2 if got else 10))
check(st == 200, "forks: a cursor page (%d)" % st)
st, j = get_json(P, "/api/v1/forks/%d" % (got[0]["id"] if got else 1))
check(st == 200 and j.get("parent_comm") == BAD_JSON, "forks/{id}: 200 escaped (%d)" % st)
st, j = get_json(P, "/api/v1/top?limit=100")
check(st == 200 and any(c["comm"] == BAD_JSON and c["forks"] == n_bad for c in j["comms"]),
      "top: the comm is listed, escaped (%s)" % [c["comm"] for c in j.get("comms", [])])
esc = "%5Cxff%5Cxfebad%5C%5Cx"  # the escaped form, URL-encoded
raw_q = "%FF%FEbad%5Cx"  # the raw bytes: a lone backslash is a bad escape
for ep in ("stats", "histogram", "timeseries"):
    st, j = get_json(P, "/api/v1/%s?comm=%s" % (ep, esc))
    check(st == 200 and j["range"]["comm"] == BAD_JSON,
          "%s?comm=<escaped>: 200, echoed escaped (%d %s)" % (ep, st, j.get("range")))
    st, j = get_json(P, "/api/v1/%s?comm=%s" % (ep, raw_q))
    check(st == 400 and j.get("error", "").startswith("comm:"), "%s?comm=<bad escape>: 400 (%d)"
          % (ep, st))
    st, j = get_json(P, "/api/v1/%s?comm=%%FF" % ep)
    check(st == 200 and j["range"]["comm"] == "\\xff", "%s?comm=%%FF: 200, no such comm (%d)"
          % (ep, st))
st, j = get_json(P, "/api/v1/stats?comm=" + esc)
check(st == 200 and j["forks"] == n_bad, "stats?comm=<escaped> counts its %d forks (%s)"
      % (n_bad, j.get("forks")))
st, j = get_json(P, "/api/v1/forks?limit=1000&comm=" + esc)
check(st == 200 and len(j["forks"]) == n_bad, "forks?comm=<escaped> matches its forks")
for bad in ("%5Cx0", "%5Cx00", "%5Cq", "%5C", "%5Cxzz"):
    st, j = get_json(P, "/api/v1/forks?comm=" + bad)
    check(st == 400 and j.get("error", "").startswith("comm:"), "comm=%s: 400 (%d)" % (bad, st))
# an unknown parameter whose name is not UTF-8 (found by fuzz_http): 400, message escaped
st, j = get_json(P, "/api/v1/histogram?%FF%FEx=1")
check(st == 400 and "\\xff\\xfex" in j.get("error", ""), "unknown parameter %%FF%%FEx: 400 (%d %s)"
      % (st, j))

# -- 8. every integer and time limit of the query parameters, +-1
I64 = 2**63 - 1
INT = 2**31 - 1
for ep, name, lo, hi in (("forks", "limit", 1, 1000), ("forks", "pid", 0, INT),
                         ("forks", "min_us", 0, I64 // 1000), ("forks", "cursor", 0, I64),
                         ("top", "limit", 1, 100), ("timeseries", "limit", 1, 10000),
                         ("timeseries", "step", 60, 86400)):
    for v, want in ((lo - 1, 400), (lo, 200), (hi, 200), (hi + 1, 400)):
        st, j = get_json(P, "/api/v1/%s?%s=%d" % (ep, name, v))
        check(st == want and (want == 200 or j.get("error", "").startswith(name + ":")),
              "%s?%s=%d: %d (%d)" % (ep, name, v, want, st))
for v, want in ((59, 400), (61, 400), (3599, 400), (3600, 200), (3601, 400), (86399, 400)):
    st, j = get_json(P, "/api/v1/timeseries?step=%d" % v)
    check(st == want, "timeseries?step=%d: %d (%d)" % (v, want, st))
for v, want in ((0, 200), (I64, 200), (I64 + 1, 400), (-1, 400)):
    st, j = get_json(P, "/api/v1/forks?since=%d" % v)
    check(st == want, "forks?since=%d (trace clock): %d (%d)" % (v, want, st))
days = int(time.time() // 86400)  # relative times reach back to 1970, not before
for q, want in (("-0s", 200), ("-1s", 200), ("-%dd" % (days - 1), 200), ("-%dd" % (days + 1), 400),
                ("-9223372036s", 400), ("-99999999999999999999d", 400)):
    st, j = get_json(P, "/api/v1/stats?since=" + q)
    check(st == want, "stats?since=%s: %d (%d)" % (q, want, st))
for n, want in ((31, 200), (32, 400)):
    st, j = get_json(P, "/api/v1/stats?comm=" + "c" * n)
    check(st == want, "comm of %d bytes: %d (%d)" % (n, want, st))
    st, j = get_json(P, "/api/v1/stats?comm=" + "c" * (n - 1) + "%5Cxff")
    check(st == want, "comm of %d bytes, the last escaped: %d (%d)" % (n, want, st))
st, j = get_json(P, "/api/v1/stats?comm=")
check(st == 400, "comm of 0 bytes: 400 (%d)" % st)

r = subprocess.run([PTESCOPE, "report", "--db", db, "-f", "json", "--comm",
                    BAD_JSON], capture_output=True, timeout=60)
rep = __import__("json").loads(r.stdout or b"{}")
check(r.returncode == 0 and len(rep.get("forks", [])) == n_bad and
      rep["summary"]["by_comm"][0]["comm"] == BAD_JSON,
      "ptescope report --comm <escaped>: its %d forks (%d, %s)" % (n_bad, r.returncode, r.stderr[:200]))

srv.stop()

# -- 4. FIFOs in the web root (a file, a directory's index.html): 404 at once, nobody waits;
#    ptescope replay of a FIFO or a device: refused, not waited on
web = os.path.join(d, "web")
os.makedirs(os.path.join(web, "sub"))
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<html></html>")
os.mkfifo(os.path.join(web, "fifo.html"))
os.mkfifo(os.path.join(web, "sub", "index.html"))
srv = Driver(db, "--web-root", web, "--threads", "2")
P = srv.port
for path in ("/fifo.html", "/fifo.html", "/sub/", "/sub"):
    t0 = time.monotonic()
    st, j = get_json(P, path, timeout=5)
    check(st == 404 and time.monotonic() - t0 < 2, "GET %s (a FIFO): 404 at once (%d)"
          % (path, st))
st, j = get_json(P, "/healthz", timeout=5)
check(st == 200, "/healthz after FIFO requests (%d)" % st)
st, hd, body = request(P, "GET", "/", timeout=5)
check(st == 200 and body == b"<html></html>", "a regular file is still served")
srv.stop()
fifo = os.path.join(d, "trace.fifo")
os.mkfifo(fifo)
for args in (["replay", fifo], ["replay", "--db", os.path.join(d, "r.db"), fifo],
             ["replay", "/dev/zero"]):
    try:
        r = subprocess.run([PTESCOPE] + args, capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and args[-1] in r.stderr and "regular file" in r.stderr,
              "ptescope %s FIFO: refused (%d: %s)" % (args[0], r.returncode, r.stderr.strip()))
    except subprocess.TimeoutExpired:
        check(False, "ptescope %s FIFO: hangs" % " ".join(args[:-1]))

finish()
