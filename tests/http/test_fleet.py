#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet files as installed (cmake --install into a scratch prefix: the
/usr/share/ptescope/prometheus and grafana of the package), against a real
Prometheus (Debian's, loopback only, bounded runtime) scraping three hosts: two
real ptescoped capturing this machine's forks in syscall mode (a stand-in driver
instead where tracefs cannot be used) while the cloner workload forks, spawns and
makes threads, and one stand-in host with a graph capture's status fed a
recording and synthetic forks a little at a time.

Checked: promtool check config/rules and test rules on the installed files;
Prometheus loads the installed rules and evaluates every one without error;
every query of every panel of the installed Grafana dashboard evaluates and
returns data; the fleet p99 through Prometheus equals the one computed from the
stand-in's /metrics; exemplars scraped as OpenMetrics lead to /api/v1/forks/{id}.

Usage: test_fleet.py BUILD_DIR DAEMON CLONER"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from common import (Driver, check, finish, free_port, get_json, replay_db, request, scratch, sql,
                    synth_db, FIXTURES)

prom, promtool = shutil.which("prometheus"), shutil.which("promtool")
if not prom or not promtool:
    print("prometheus/promtool not installed (Debian package prometheus): skipped")
    sys.exit(77)
build, daemon, cloner = sys.argv[1:4]
for prog in (daemon, cloner):
    if not os.access(prog, os.X_OK):
        print(f"FAIL {prog} is not built (a build that runs this test builds it)")
        sys.exit(1)
d = scratch("fleet")
deadline = time.time() + 150

# -- the installed files
inst = os.path.join(d, "prefix")
subprocess.run(["cmake", "--install", build, "--prefix", inst], check=True,
               stdout=subprocess.DEVNULL)
share = os.path.join(inst, "share", "ptescope")
rules = os.path.join(share, "prometheus", "ptescope-rules.yml")
for f in ("prometheus/ptescope-rules.yml", "prometheus/ptescope-rules-test.yml",
          "prometheus/prometheus.yml", "grafana/ptescope-dashboard.json",
          "grafana/provisioning/dashboards/ptescope.yml",
          "grafana/provisioning/datasources/ptescope-prometheus.yml"):
    check(os.path.isfile(os.path.join(share, f)), "installed: share/ptescope/" + f)
example = open(os.path.join(share, "prometheus", "prometheus.yml")).read()
check("sample_limit:" in example and "/usr/share/ptescope/prometheus/ptescope-rules.yml" in example,
      "the example scrape config has a sample_limit and loads the installed rules")
with open(os.path.join(d, "example.yml"), "w") as f:
    f.write(example.replace("/usr/share/ptescope/prometheus/ptescope-rules.yml", rules))
for args, cwd in ((["check", "config", os.path.join(d, "example.yml")], d),
                  (["check", "rules", rules], d),
                  (["test", "rules", "ptescope-rules-test.yml"], os.path.dirname(rules))):
    p = subprocess.run([promtool] + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "promtool %s: %s" % (args[0] + " " + args[1],
                                                  (p.stdout + p.stderr).strip()[-300:]))
dash = json.load(open(os.path.join(share, "grafana", "ptescope-dashboard.json")))


# -- the hosts
def tracefs_ok():
    t = "/sys/kernel/tracing"
    probe = os.path.join(t, "instances", "ptescope-fleet-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError:
        return False
    return os.path.isdir(os.path.join(t, "events", "syscalls", "sys_enter_clone"))


class Daemon:
    """A real ptescoped in syscall mode on 127.0.0.1."""

    def __init__(self, n):
        self.port = free_port()
        self.log = open(os.path.join(d, "daemon%d.log" % n), "w")
        self.p = subprocess.Popen(
            [daemon, "--capture", "syscall", "--db", os.path.join(d, "live%d.db" % n),
             "--state-file", os.path.join(d, "state%d" % n),
             "--instance", "ptescope-fleet-%d-%d" % (os.getpid(), n),
             "--listen", "127.0.0.1:%d" % self.port, "--poll-ms", "100",
             "--comm-allow", "cloner"], stdout=self.log, stderr=self.log)
        for _ in range(100):
            try:
                if request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ptescoped %d did not come up" % n)

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -9
        check(rc == 0, "ptescoped exits 0 on SIGTERM (%d)" % rc)


GRAPH = {"capture": {"mode": "graph", "requested": "auto", "detail": "fork", "hooks": "kprobes",
                     "preemptions": True, "passes": {"state": "armed"},
                     "functions": "kernel_clone,copy_process,dup_mmap,copy_page_range,"
                                  "wake_up_new_task"},
         "kernel": "6.1.0-stand-in", "live": {"parent_mem": True}}
gdb = os.path.join(d, "graph.db")
replay_db(gdb, os.path.join(FIXTURES, "forker-200mb-graph.dat"),
          os.path.join(FIXTURES, "vm", "fork-path.dat"))
synth_db(gdb, 2500)
graph = Driver(gdb, "--comm-allow", "forker,postgres,redis-server", "--status", json.dumps(GRAPH),
               "--trickle", "10")  # 100 a second: about 30 s of growing counters
hosts = []
live = tracefs_ok()
if live:
    hosts = [Daemon(1), Daemon(2)]
else:
    print("tracefs not usable here: two stand-ins in syscall mode instead of ptescoped")
    sdb = os.path.join(d, "sys.db")
    synth_db(sdb, 1500, 0, 7)
    st = {"capture": {"mode": "syscall", "requested": "auto"}, "live": {"parent_mem": True}}
    hosts = [Driver(sdb, "--comm-allow", "cloner", "--status", json.dumps(st), "--trickle", "20")
             for _ in range(2)]
targets = ["127.0.0.1:%d" % h.port for h in hosts + [graph]]

stop_load = threading.Event()


def load():
    """The cloner workload: forks, threads and spawns, every half second."""
    while not stop_load.is_set():
        subprocess.run([cloner, "--n", "2"], stdout=subprocess.DEVNULL)
        stop_load.wait(0.5)


loader = threading.Thread(target=load, daemon=True)
loader.start()


def cleanup():
    stop_load.set()
    for h in hosts + [graph]:
        try:
            h.p.terminate()
        except OSError:
            pass


import atexit  # noqa: E402  (the daemons leave tracefs as found whatever fails below)
atexit.register(cleanup)

# -- Prometheus with the installed rules
pport = free_port()
with open(os.path.join(d, "scrape.yml"), "w") as f:
    f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - %s\n"
            "scrape_configs:\n  - job_name: ptescope\n    sample_limit: 20000\n"
            "    static_configs:\n      - targets: %s\n" % (rules, json.dumps(targets)))
plog = open(os.path.join(d, "prometheus.log"), "w")
pp = subprocess.Popen(["timeout", "200", prom, "--config.file=" + os.path.join(d, "scrape.yml"),
                       "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                       "--enable-feature=exemplar-storage",
                       "--web.listen-address=127.0.0.1:%d" % pport], stdout=plog, stderr=plog)


def api(path, **params):
    u = "http://127.0.0.1:%d/api/v1/%s?%s" % (pport, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(u, timeout=10) as r:
        return json.load(r)


def query(q):
    return api("query", query=q)["data"]["result"]


up = []
while time.time() < deadline:
    try:
        up = query('up{job="ptescope"} == 1')
        if len(up) == len(targets):
            break
    except OSError:
        pass
    time.sleep(0.5)
check(len(up) == 3, "Prometheus scrapes the three hosts (up == 1 for %d)" % len(up))


def grafana_expr(e):
    """A panel's query as Grafana sends it: its variables replaced."""
    return e.replace("$__rate_interval", "15s").replace("$instance", ".*")


# -- every panel's every query returns data (rules need a few evaluations: retried)
pending = [(p["title"], t["refId"], grafana_expr(t["expr"])) for p in dash["panels"]
           for t in p["targets"]]
check(len(dash["panels"]) >= 10 and all("$" not in e for _, _, e in pending),
      "the dashboard: %d panels, %d queries" % (len(dash["panels"]), len(pending)))
results = {}
while pending and time.time() < deadline:
    left = []
    for title, ref, e in pending:
        try:
            r = api("query", query=e)
            ok = r["status"] == "success" and any(
                s["value"][1] not in ("NaN", "+Inf", "-Inf") for s in r["data"]["result"])
        except (OSError, ValueError) as ex:
            r, ok = {"error": str(ex)}, False
        results[(title, ref)] = r
        if not ok:
            left.append((title, ref, e))
    pending = left
    if pending:
        time.sleep(1)
for title, ref, e in [(p["title"], t["refId"], t["expr"]) for p in dash["panels"]
                      for t in p["targets"]]:
    r = results.get((title, ref), {})
    n = len(r.get("data", {}).get("result", []))
    check(r.get("status") == "success" and (title, ref, grafana_expr(e)) not in pending,
          "dashboard panel '%s' query %s returns data (%d series)" % (title, ref, n))

# -- the kinds reach Prometheus apart from the forks
if live:
    th = query('sum(ptescope_clones_total{comm="cloner",kind="thread"})')
    sp = query('sum(ptescope_clones_total{comm="cloner",kind="spawn"})')
    fk = query('sum(ptescope_forks_total{comm="cloner"})')
    check(th and sp and fk and float(th[0]["value"][1]) > 0 and float(sp[0]["value"][1]) > 0
          and float(fk[0]["value"][1]) > 0,
          "live: cloner's threads and spawns in ptescope_clones_total, its forks in "
          "ptescope_forks_total (%s %s %s)" % (th, sp, fk))

# -- rules: all loaded from the installed file, evaluated without error
groups = api("rules")["data"]["groups"]
n = sum(len(g["rules"]) for g in groups)
want = len(re.findall(r"^\s+- (?:record|alert): ", open(rules).read(), re.M))
bad = [(r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
       if r["health"] != "ok"]
check(n == want and want >= 20 and not bad,
      "Prometheus loaded the %d installed rules and evaluates them without error (%s)" % (n, bad))
firing = [a["labels"]["alertname"] for a in api("alerts")["data"]["alerts"]]
check("PtescopeDown" not in firing and "PtescopeAbsent" not in firing,
      "no daemon-down alert while every host answers (%s)" % firing)

# -- exemplars scraped as OpenMetrics lead to the forks
ex = api("query_exemplars", query="ptescope_fork_duration_seconds_bucket",
         start=str(time.time() - 300), end=str(time.time()))["data"]
ids = [(s["seriesLabels"]["instance"], e["labels"]["fork_id"], float(e["value"]))
       for s in ex for e in s["exemplars"]]
gids = [(i, v) for inst_, i, v in ids if inst_ == "127.0.0.1:%d" % graph.port]
check(len(gids) >= 3, "Prometheus stored exemplars naming fork ids (%d, %d of the stand-in)" %
      (len(ids), len(gids)))
good = 0
for fid, v in gids[:10]:
    st, f = get_json(graph.port, "/api/v1/forks/" + fid)
    good += st == 200 and abs(f["total_ns"] / 1e9 - v) < 1e-6
check(gids and good == min(len(gids), 10),
      "each exemplar's fork id is a stored fork of that host with that time (%d)" % good)

# -- the stand-in's p99 through Prometheus = computed from its /metrics (its feed done)
stored = sql(gdb, "SELECT count(*) FROM fork")[0][0]
while time.time() < deadline + 60:
    if get_json(graph.port, "/api/v1/status")[1].get("forks_stored") == stored:
        break
    time.sleep(0.5)
st, hd, body = request(graph.port, "GET", "/metrics")
buckets = {}
for m in re.finditer(r'^ptescope_fork_duration_seconds_bucket\{comm="[^"]*",le="([^"]+)"\} (\d+)$',
                     body.decode(), re.M):
    le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
    buckets[le] = buckets.get(le, 0) + int(m.group(2))
total = buckets.get(float("inf"), 0)
exp, prev_le, prev_c = None, 0.0, 0
for le in sorted(buckets):
    if buckets[le] >= 0.99 * total:
        exp = prev_le if le == float("inf") else \
            prev_le + (le - prev_le) * (0.99 * total - prev_c) / (buckets[le] - prev_c)
        break
    prev_le, prev_c = le, buckets[le]
time.sleep(2)
res = query('histogram_quantile(0.99, sum by (le) (ptescope_fork_duration_seconds_bucket'
            '{instance="127.0.0.1:%d"}))' % graph.port)
got = float(res[0]["value"][1]) if res else -1
check(exp is not None and abs(got - exp) <= 1e-9 * max(1, exp),
      "the stand-in's p99 through Prometheus %.6f s = computed from its /metrics %s s (%d forks)"
      % (got, exp, total))

stop_load.set()
loader.join()
pp.terminate()
try:
    pp.wait(20)
except subprocess.TimeoutExpired:
    pp.kill()
for h in hosts + [graph]:
    h.stop()
finish()
