#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""/metrics as a fleet sees it: the series each comm group costs at each capture
(measured, and equal to the table in docs/fleet.md), families the capture cannot
fill left out, gzip when asked, OpenMetrics with exemplars that lead to
/api/v1/forks/{id} when asked, text 0.0.4 for a format we do not speak, and the
opt-in cgroup label capped with "other".

Usage: test_metrics_budget.py DOCS_DIR [--print]  (--print: the figures for the docs)"""
import gzip
import json
import os
import re
import sys

from common import Driver, check, finish, get_json, request, scratch, synth_db, FIXTURES, replay_db

docs = sys.argv[1]
show = "--print" in sys.argv
d = scratch("metrics-budget")

# The captures a host runs, as the core's status shows them (capture.functions: what is hooked).
CAPTURES = {
    "syscall": {"capture": {"mode": "syscall", "requested": "auto"},
                "live": {"parent_mem": True}},
    "kprobes-6.1": {"capture": {"mode": "graph", "requested": "auto", "detail": "fork",
                                "hooks": "kprobes", "preemptions": True,
                                "functions": "kernel_clone,copy_process,dup_mmap,"
                                             "copy_page_range,wake_up_new_task",
                                "passes": {"state": "armed"}},
                    "live": {"parent_mem": True}},
    "kprobes-6.12": {"capture": {"mode": "graph", "requested": "auto", "detail": "fork",
                                 "hooks": "kprobes", "preemptions": True,
                                 "functions": "kernel_clone,copy_process,copy_page_range,"
                                              "wake_up_new_task",
                                 "passes": {"state": "armed"}},
                     "live": {"parent_mem": True}},
    "kprobes-no-passes": {"capture": {"mode": "graph", "requested": "auto", "detail": "fork",
                                      "hooks": "kprobes", "preemptions": True,
                                      "functions": "kernel_clone,copy_process,copy_page_range,"
                                                   "wake_up_new_task",
                                      "passes": {"state": "unknown_code"}},
                          "live": {"parent_mem": True}},
}
COMMS64 = ["c%02d" % i for i in range(63)] + ["redis-server"]


def series(text):
    return [l for l in text.splitlines() if l and not l.startswith("#")]


def measure(db, name, comms):
    srv = Driver(db, "--comm-allow", ",".join(comms), "--status", json.dumps(CAPTURES[name]))
    st, hd, body = request(srv.port, "GET", "/metrics")
    st2, hd2, zbody = request(srv.port, "GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    srv.stop()
    text = body.decode()
    per = len([l for l in series(text) if 'comm="%s"' % comms[0] in l])
    return per, len(series(text)), len(body), len(zbody), text, hd2, zbody


# -- the series budget, on a database without forks: only what the capture can fill
empty = os.path.join(d, "empty.db")
synth_db(empty, 0)
five = ["redis-server", "postgres", "python3", "bash", "sshd"]
figures = {}
for name in CAPTURES:
    per, total, size, zsize, text, hd, z = measure(empty, name, five)
    _, total64, size64, zsize64, _, _, _ = measure(empty, name, COMMS64)
    figures[name] = (per, total, size, zsize, total64, size64, zsize64)
    if show:
        print("%-18s per comm %3d | 5 comms: %5d samples %7d bytes %6d gzip | 64 comms: %6d "
              "samples %8d bytes %7d gzip" % ((name,) + figures[name]))
    if name == "syscall":
        check("ptescope_pte_lock_hold_seconds" not in text and
              "ptescope_lock_breaks_total" not in text and 'phase="dup_mmap"' not in text and
              'phase="kernel_clone"' not in text,
              "syscall mode: the families it cannot fill are left out (no holds, lock breaks, "
              "dup_mmap)")
        check(hd.get("content-encoding") == "gzip" and gzip.decompress(z).decode().count("\n") > 10,
              "gzip when asked: Content-Encoding gzip, %d bytes for %d" % (zsize, size))
    if name == "kprobes-6.12":
        check('phase="dup_mmap"' not in text and 'phase="copy_page_range"' in text and
              "ptescope_pte_lock_hold_seconds_bucket" in text,
              "6.12 (dup_mmap inlined): no dup_mmap series; passes' holds kept")
    if name == "kprobes-no-passes":
        check("ptescope_pte_lock_hold_seconds" not in text and
              "ptescope_ptes_copied_total" not in text,
              "no pass probes armed: no hold, pass nor PTE families")

# docs/fleet.md states the same figures (the table between its budget markers)
md = open(os.path.join(docs, "fleet.md")).read()
rows = dict((m.group(1), tuple(int(x.replace(",", "")) for x in m.groups()[1:]))
            for m in re.finditer(r"^\| `([\w.-]+)` \| (\d+) \| ([\d,]+) \| ([\d,]+) \|", md, re.M))
for name, f in figures.items():
    check(rows.get(name) == (f[0], f[1], f[4]),
          "docs/fleet.md: %s: %s series per comm, %s with 5 comms, %s with 64 (docs: %s)" %
          (name, f[0], f[1], f[4], rows.get(name)))

# -- formats and exemplars on real data
db = os.path.join(d, "m.db")
replay_db(db, os.path.join(FIXTURES, "vm", "fork-path.dat"))
synth_db(db, 500)
srv = Driver(db, "--comm-allow", "redis-server,forker", "--status",
             json.dumps(CAPTURES["kprobes-6.1"]), "--cgroup-label", "unit", "--cgroup-max", "2")
st, hd, body = request(srv.port, "GET", "/metrics", headers={
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
om = body.decode()
check(st == 200 and hd["content-type"].startswith("application/openmetrics-text; version=1.0.0")
      and om.endswith("# EOF\n"), "OpenMetrics when asked, ending in # EOF")
check("# TYPE ptescope_forks counter" in om and "ptescope_forks_total{" in om,
      "OpenMetrics: counters typed without _total, sampled with it")
ex = re.findall(r'^ptescope_fork_duration_seconds_bucket\{comm="(?:[^"]*)",le="([^"]+)"\} \d+ '
                r'# \{fork_id="(\d+)"\} ([0-9.e+-]+) [0-9.]+$', om, re.M)
check(len(ex) >= 5, "exemplars on the fork duration buckets (%d)" % len(ex))
good = 0
for le, fid, v in ex[:20]:
    st, f = get_json(srv.port, "/api/v1/forks/" + fid)
    good += st == 200 and f["kind"] == "fork" and abs(f["total_ns"] / 1e9 - float(v)) < 1e-6 and \
        (le == "+Inf" or f["total_ns"] / 1e9 <= float(le))
check(good == min(len(ex), 20),
      "each exemplar names a stored fork whose time is its value, inside its bucket (%d)" % good)
st, hd, body = request(srv.port, "GET", "/metrics",
                       headers={"Accept": "application/vnd.google.protobuf;proto=io.prometheus."
                                          "client.MetricFamily;encoding=delimited"})
check(st == 200 and hd["content-type"].startswith("text/plain; version=0.0.4") and
      b"# {" not in body and b"# EOF" not in body,
      "a format we do not speak gets text 0.0.4, without exemplars")
units = set(re.findall(r'ptescope_cgroup_forks_total\{systemd_unit="([^"]+)"\}', body.decode()))
check(len(units) <= 4 and "none" in units and "other" in units and len(units - {"none", "other"}) == 2,
      "the cgroup label: 2 units, then other, and none (%s)" % sorted(units))
srv.stop()
finish()
