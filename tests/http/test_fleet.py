#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A real Prometheus (Debian's, loopback only, bounded runtime) scrapes two test
servers fed different recordings; histogram_quantile over both, asked through
Prometheus's HTTP API, must equal the value computed from the two /metrics
texts. The config and rules of docs/fleet.md are checked with promtool."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from common import Driver, check, finish, replay_db, request, scratch, synth_db, FIXTURES

prom, promtool = shutil.which("prometheus"), shutil.which("promtool")
if not prom or not promtool:
    print("prometheus/promtool not installed (Debian package prometheus): skipped")
    sys.exit(77)
docs = sys.argv[1]
d = scratch("fleet")

# -- docs/fleet.md: extract the file: blocks, check them with promtool
md = open(os.path.join(docs, "fleet.md")).read()
blocks = dict(re.findall(r"<!-- file: (\S+) -->\n```yaml\n(.*?)```", md, re.S))
check(set(blocks) == {"prometheus.yml", "ptescope-rules.yml", "ptescope-rules-test.yml"},
      "docs/fleet.md has the config, rules and rule tests")
for name, text in blocks.items():
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
for args in (["check", "config", "prometheus.yml"], ["check", "rules", "ptescope-rules.yml"],
             ["test", "rules", "ptescope-rules-test.yml"]):
    p = subprocess.run([promtool] + args, cwd=d, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "promtool %s: %s" % (" ".join(args), (p.stdout + p.stderr).strip()[-300:]))

# -- two hosts with different recordings
dba, dbb = os.path.join(d, "a.db"), os.path.join(d, "b.db")
replay_db(dba, os.path.join(FIXTURES, "forker-200mb-graph.dat"),
          os.path.join(FIXTURES, "forker-64mb-graph-partial.txt"))
synth_db(dbb, 2000)
a = Driver(dba, "--comm-allow", "forker,postgres")
b = Driver(dbb, "--comm-allow", "forker,postgres")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


pport = free_port()
with open(os.path.join(d, "scrape.yml"), "w") as f:
    f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - ptescope-rules.yml\n"
            "scrape_configs:\n  - job_name: ptescope\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n" % (a.port, b.port))
log = open(os.path.join(d, "prometheus.log"), "w")
pp = subprocess.Popen(["timeout", "120", prom, "--config.file=" + os.path.join(d, "scrape.yml"),
                       "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                       "--web.listen-address=127.0.0.1:%d" % pport], stdout=log, stderr=log)


def query(q):
    u = "http://127.0.0.1:%d/api/v1/query?%s" % (pport, urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(u, timeout=5) as r:
        return json.load(r)["data"]["result"]


up = []
for _ in range(60):
    try:
        up = query("up == 1")
        if len(up) == 2 and len(query("ptescope_build_info")) == 2:
            break
    except OSError:
        pass
    time.sleep(0.5)
check(len(up) == 2, "Prometheus scrapes both hosts (up == 1 for 2 targets)")

# the expected fleet p99 from the two expositions, the way Prometheus interpolates
buckets = {}
for srv in (a, b):
    st, hd, body = request(srv.port, "GET", "/metrics")
    for m in re.finditer(r'^ptescope_fork_duration_seconds_bucket\{comm="[^"]*",le="([^"]+)"\} (\d+)$',
                         body.decode(), re.M):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0) + int(m.group(2))
les = sorted(buckets)
total = buckets[float("inf")]
rank = 0.99 * total
prev_le, prev_c = 0.0, 0
for le in les:
    if buckets[le] >= rank:
        exp = prev_le if le == float("inf") else \
            prev_le + (le - prev_le) * (rank - prev_c) / (buckets[le] - prev_c)
        break
    prev_le, prev_c = le, buckets[le]
res = query("histogram_quantile(0.99, sum by (le) (ptescope_fork_duration_seconds_bucket))")
got = float(res[0]["value"][1]) if res else -1
check(abs(got - exp) <= 1e-9 * max(1, exp),
      "fleet p99 through Prometheus %.6f s = computed from both /metrics %.6f s (%d forks)"
      % (got, exp, total))
res = query("histogram_quantile(0.99, sum by (instance, le) (ptescope_fork_duration_seconds_bucket))")
vals = sorted(float(r["value"][1]) for r in res)
check(len(vals) == 2 and vals[0] < vals[1] and vals[0] < got <= vals[1],
      "per-instance p99 differ and bracket the fleet p99: %s" % vals)
res = query('sum(ptescope_forks_total)')
inc = float(query("sum(ptescope_forks_incomplete_total)")[0]["value"][1])
check(res and float(res[0]["value"][1]) == total + inc,
      "sum of forks over both hosts = complete (histogram count) + incomplete")
with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/rules" % pport, timeout=5) as r:
    groups = json.load(r)["data"]["groups"]
n = sum(len(g["rules"]) for g in groups)
want = len(re.findall(r"^\s+- (?:record|alert): ", blocks["ptescope-rules.yml"], re.M))
check(n == want == 12 and all(r["health"] == "ok" for g in groups for r in g["rules"]),
      "Prometheus loaded the %d rules of docs/fleet.md and evaluates them without error (%s)" %
      (want, [(r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
              if r["health"] != "ok"]))
pp.terminate()
try:
    pp.wait(20)
except subprocess.TimeoutExpired:
    pp.kill()
a.stop()
b.stop()
finish()
