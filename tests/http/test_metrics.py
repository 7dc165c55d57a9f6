#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""/metrics: valid Prometheus text (promtool check metrics), values that match
the database, the comm label limited to the allow-list plus "other"."""
import os
import re
import shutil
import subprocess
import sys

from common import (Driver, check, finish, passes, replay_db, request, scratch, sql, synth_db,
                    FIXTURES)

promtool = shutil.which("promtool")
if not promtool:
    print("promtool not installed (Debian package prometheus): skipped")
    sys.exit(77)

d = scratch("metrics")
db = os.path.join(d, "m.db")
replay_db(db, os.path.join(FIXTURES, "forker-200mb-graph.dat"),
          os.path.join(FIXTURES, "forker-64mb-graph-partial.txt"),
          os.path.join(FIXTURES, "vm", "fork-path.dat"))  # its vforks: clones of unknown kind
synth_db(db, 3000)
srv = Driver(db, "--comm-allow", "forker,postgres,redis-server")
st, hd, body = request(srv.port, "GET", "/metrics")
text = body.decode()
check(st == 200 and hd["content-type"].startswith("text/plain; version=0.0.4"),
      "/metrics 200 text/plain; version=0.0.4")
p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
check(p.returncode == 0, "promtool check metrics: %s" % (p.stdout + p.stderr).decode().strip()[:300])

samples = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)


def val(name):
    return samples.get(name, 0.0)


comms = set(re.findall(r'comm="([^"]*)"', text))
check(comms == {"forker", "postgres", "redis-server", "other"},
      "comm label values: the allow-list plus other (%s)" % sorted(comms))
total = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork'")[0][0]
got = sum(v for k, v in samples.items() if k.startswith("ptescope_forks_total{"))
check(got == total, "sum of ptescope_forks_total = address-space copies stored (%d)" % total)
others = sql(db, "SELECT count(*) FROM fork WHERE kind IS NOT 'fork'")[0][0]
got = sum(v for k, v in samples.items() if k.startswith("ptescope_clones_total{"))
check(others > 0 and got == others,
      "the other clones (%d: vforks of the fixture, unknown) in ptescope_clones_total" % others)
n = sql(db, "SELECT count(*) FROM fork WHERE parent_comm='forker' AND kind = 'fork'")[0][0]
check(val('ptescope_forks_total{comm="forker"}') == n, "forker forks: %d" % n)
n = sql(db, "SELECT count(*) FROM fork WHERE (parent_comm NOT IN ('forker','postgres',"
            "'redis-server') OR parent_comm IS NULL) AND kind = 'fork'")[0][0]
check(val('ptescope_forks_total{comm="other"}') == n, "other: %d" % n)
ptes = sql(db, "SELECT sum(ptes) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='forker' AND "
              "kind = 'fork' AND ptes > 0 AND copy_page_range_ns IS NOT NULL")[0][0]
check(val('ptescope_ptes_copied_total{comm="forker"}') == ptes, "PTEs copied by forker: %d" % ptes)
lb = sql(db, "SELECT sum(lock_breaks) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='postgres'")[0][0]
check(val('ptescope_lock_breaks_total{comm="postgres"}') == lb, "lock breaks of postgres: %d" % lb)
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='forker' AND "
            "coalesce(kernel_clone_ns, copy_process_ns, dup_mmap_ns, copy_page_range_ns) "
            "IS NOT NULL")[0][0]
check(val('ptescope_fork_duration_seconds_count{comm="forker"}') == n and
      val('ptescope_fork_duration_seconds_bucket{comm="forker",le="+Inf"}') == n,
      "fork duration histogram count for forker: %d" % n)
# Buckets against the database: forker forks of copy_page_range <= 50 ms.
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='forker' AND "
            "copy_page_range_ns <= 50000000")[0][0]
check(val('ptescope_fork_phase_duration_seconds_bucket{comm="forker",phase="copy_page_range",'
          'le="0.05"}') == n, "copy_page_range <= 50 ms bucket for forker: %d" % n)
npass = sum(1 for p in passes(db, "f.kind = 'fork' AND f.complete AND f.parent_comm='forker'") if p[4] is not None)
check(val('ptescope_pte_lock_hold_seconds_count{comm="forker"}') == npass,
      "PTE lock hold histogram counts every timed pass of forker: %d" % npass)
# The cost model's histograms against the database (analyzer/cost.h definitions).
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='forker' AND ptes > 0 "
            "AND copy_page_range_ns IS NOT NULL")[0][0]
check(n > 0 and val('ptescope_fork_copy_seconds_per_pte_count{comm="forker"}') == n,
      "ns per PTE histogram counts forker's forks with PTEs: %d" % n)
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='forker' AND ptes > 0 "
            "AND copy_page_range_ns IS NOT NULL AND copy_page_range_ns * 1.0 / ptes <= 2500")[0][0]
check(val('ptescope_fork_copy_seconds_per_pte_bucket{comm="forker",le="2.5e-06"}') == n,
      "ns per PTE <= 2500 bucket for forker: %d" % n)
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='postgres' AND "
            "mem_rss_anon_bytes + mem_rss_file_bytes + mem_rss_shmem_bytes > 0 AND "
            "total_ns > 0")[0][0]
check(n > 0 and val('ptescope_fork_seconds_per_rss_gibibyte_count{comm="postgres"}') == n,
      "ms per GiB of RSS histogram counts postgres forks with the parent's memory: %d" % n)
n = sql(db, "SELECT count(*) FROM fork WHERE kind = 'fork' AND complete AND parent_comm='postgres' AND "
            "copy_page_range_ns IS NOT NULL AND coalesce(kernel_clone_ns, copy_process_ns, "
            "dup_mmap_ns) >= copy_page_range_ns AND coalesce(kernel_clone_ns, copy_process_ns, "
            "dup_mmap_ns) > 0")[0][0]
check(n > 0 and val('ptescope_fork_copy_ratio_count{comm="postgres"}') == n,
      "copy share histogram counts postgres forks with an enclosing phase: %d" % n)
check(val('ptescope_fork_copy_ratio_bucket{comm="postgres",le="1"}') == n,
      "no copy share above 1")
check(val("ptescope_capture_healthy") == 1 and
      any(k.startswith('ptescope_capture_info{mode="off"') for k in samples),
      "capture info and health gauges")
check(val("ptescope_store_healthy") == 1 and val("ptescope_store_write_failures_total") == 0
      and val("ptescope_live_forks_lost_total") == 0, "store health gauge and counters")
check(any(re.match(r'ptescope_build_info\{version="[^"]+",revision="[0-9a-f]+|unknown"\}', k)
          for k in samples), "build info with revision")
lines = len(text.splitlines())
check(lines < 2000, "bounded output: %d lines for 4 comm groups" % lines)
srv.stop()
finish()
