#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every JSON endpoint and every error status of the HTTP API, against the test
driver over a database of real forks (the fixture replayed by the CLI) plus
synthetic volume; answers are checked against the database read directly."""
import json
import os
import time

from common import (Driver, check, finish, get_json, passes, raw, replay_db, request, scratch, sql,
                    status_of, synth_db, vmas, FIXTURES)

d = scratch("api")
db = os.path.join(d, "api.db")
replay_db(db, os.path.join(FIXTURES, "forker-200mb-graph.dat"))
synth_db(db, 2500)
total = sql(db, "SELECT count(*) FROM fork")[0][0]
unhealthy = os.path.join(d, "unhealthy")
srv = Driver(db, "--unhealthy-file", unhealthy)
P = srv.port

# -- /healthz and /api/v1/status
st, j = get_json(P, "/healthz")
check(st == 200 and j == {"status": "ok"}, "/healthz 200 ok")
open(unhealthy, "w").close()
st, j = get_json(P, "/healthz")
check(st == 503 and "error" in j, "/healthz 503 with a JSON error when the core is not healthy")
os.unlink(unhealthy)
st, j = get_json(P, "/api/v1/status")
check(st == 200 and j.get("version") and j["forks_stored"] == total and "http" in j,
      "/api/v1/status: core status plus the http section")

# -- /api/v1/forks: paging across pages, newest first, nothing lost or repeated
ids, cursor, pages = [], None, 0
while True:
    st, j = get_json(P, "/api/v1/forks?limit=1000" + ("&cursor=%d" % cursor if cursor else ""))
    if not check(st == 200, "forks page %d" % pages):
        break
    pages += 1
    ids += [f["id"] for f in j["forks"]]
    cursor = j["next_cursor"]
    if cursor is None or pages > 10:
        break
want = [r[0] for r in sql(db, "SELECT id FROM fork ORDER BY id DESC")]
check(ids == want, "paging with limit=1000 over %d pages returns every fork once, newest first"
      % pages)
check(pages == (total + 999) // 1000, "page count %d for %d forks" % (pages, total))
st, j = get_json(P, "/api/v1/forks")
check(st == 200 and len(j["forks"]) == 100 and j["next_cursor"] == j["forks"][-1]["id"],
      "default page of 100 with next_cursor at its last id")
f0 = j["forks"][0]
keys = ["parent_pid", "parent_comm", "child_pid", "ts_ns", "kernel_clone_ns", "copy_process_ns",
        "dup_mmap_ns", "copy_page_range_ns", "vmas", "pte_passes", "lock_breaks", "ptes",
        "max_lock_hold_ns", "complete", "flags", "id"]
check(all(k in f0 for k in keys), "fork object has the keys of product.md plus id")

# filters
st, j = get_json(P, "/api/v1/forks?comm=forker&limit=1000")
n = sql(db, "SELECT count(*) FROM fork WHERE parent_comm='forker'")[0][0]
check(st == 200 and len(j["forks"]) == n and n > 0 and
      all(f["parent_comm"] == "forker" for f in j["forks"]), "comm=forker: %d forks" % n)
pid = sql(db, "SELECT parent_pid FROM fork WHERE parent_pid IS NOT NULL LIMIT 1 OFFSET 100")[0][0]
st, j = get_json(P, "/api/v1/forks?pid=%d&limit=1000" % pid)
n = sql(db, "SELECT count(*) FROM fork WHERE parent_pid=?", pid)[0][0]
check(st == 200 and len(j["forks"]) == n and all(f["parent_pid"] == pid for f in j["forks"]),
      "pid=%d: %d forks" % (pid, n))
dur = "coalesce(kernel_clone_ns, copy_process_ns, dup_mmap_ns, copy_page_range_ns)"
n = sql(db, "SELECT count(*) FROM fork WHERE %s >= 50000000" % dur)[0][0]
st, j = get_json(P, "/api/v1/forks?min_us=50000&limit=1000")
check(st == 200 and len(j["forks"]) == n and n > 0, "min_us=50000: %d forks" % n)
now = time.time_ns()
n = sql(db, "SELECT count(*) FROM fork WHERE wall_ns >= ?", now - 86400 * 10**9)[0][0]
st, j = get_json(P, "/api/v1/forks?since=-1d&limit=1000")
check(st == 200 and abs(len(j["forks"]) - n) <= 2 and 0 < n < total,
      "since=-1d (wall clock): %d forks of %d" % (len(j["forks"]), total))
ts = sql(db, "SELECT ts_ns FROM fork WHERE parent_comm='forker' ORDER BY ts_ns LIMIT 1 OFFSET 4")[0][0]
st, j = get_json(P, "/api/v1/forks?comm=forker&until=%d" % ts)
check(st == 200 and len(j["forks"]) == 4 and all(f["ts_ns"] < ts for f in j["forks"]),
      "until=<trace ns> with comm: the 4 earlier forker forks")

# -- /api/v1/forks/{id}: VMAs and passes
fid = sql(db, "SELECT id FROM fork WHERE parent_comm='forker' LIMIT 1")[0][0]
st, j = get_json(P, "/api/v1/forks/%d" % fid)
nv = len(vmas(db, "f.id=?", fid))
npass = len(passes(db, "f.id=?", fid))
check(st == 200 and j["id"] == fid and len(j["detail"]["vmas"]) == nv == j["vmas"] and
      len(j["detail"]["passes"]) == npass == j["pte_passes"] and npass > 0,
      "/forks/%d: %d VMAs and %d passes, as stored" % (fid, nv, npass))
check(all(set(p) >= {"vma", "ptes", "hold_ns", "new_pmd", "resumed"}
          for p in j["detail"]["passes"]), "passes carry vma, ptes, hold_ns, new_pmd, resumed")
for bad in ("999999999", "abc", "0", "-1", "1x"):
    st, j = get_json(P, "/api/v1/forks/" + bad)
    check(st == 404 and "error" in j, "/forks/%s: 404" % bad)

# -- /api/v1/stats
st, j = get_json(P, "/api/v1/stats")
# statistics are over complete forks (an incomplete one counts as a null)
vals = sorted(r[0] for r in sql(db, "SELECT copy_page_range_ns FROM fork "
                                    "WHERE copy_page_range_ns IS NOT NULL AND complete"))


def rank(v, q):
    import math
    return v[max(0, math.ceil(q * len(v)) - 1)]


ok = st == 200 and j["forks"] == total
for q, k in ((0.5, "p50_ns"), (0.9, "p90_ns"), (0.99, "p99_ns"), (0.999, "p999_ns"),
             (1.0, "max_ns")):
    got, exp = j["metrics"]["copy_page_range"][k], rank(vals, q)
    ok = ok and abs(got - exp) <= exp * 0.01 + 1
check(ok, "stats: count and copy_page_range p50..max within 1% of a plain sort")
check(all(k in j["metrics"] for k in ("fork", "kernel_clone", "copy_process", "dup_mmap",
                                      "copy_page_range", "max_lock_hold", "pte_pass_hold")),
      "stats: every phase and the lock hold times")
c = j["cost"]
COST = ("FROM fork WHERE complete AND copy_page_range_ns IS NOT NULL AND ptes > 0")
cn, cns, cp = sql(db, "SELECT count(*), sum(copy_page_range_ns), sum(ptes) " + COST)[0]
check(c["forks"] == cn and abs(c["ns_per_pte"] - cns / cp) < 1e-6 * cns / cp and
      abs(c["ms_per_gib"] - cns / cp * 262144 / 1e6) < 1e-6 * cns / cp and "sampled" not in c,
      "stats: cost over all %d complete forks with PTEs equals sum(copy_page_range)/sum(ptes) "
      "(%.2f ns per PTE), and per GiB" % (cn, cns / cp))
# A wall-clock range: the rollups widen it to whole minutes, so take minute edges.
MIN = 60 * 10**9
lo = sql(db, "SELECT wall_ns FROM fork ORDER BY wall_ns LIMIT 1 OFFSET ?", total // 3)[0][0]
lo = lo // MIN * MIN
st, j = get_json(P, "/api/v1/stats?since=%s" % time.strftime(
    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(lo // 10**9)))
cn, cns, cp = sql(db, "SELECT count(*), sum(copy_page_range_ns), sum(ptes) " + COST +
                  " AND wall_ns >= ?", lo)[0]
check(st == 200 and j["cost"]["forks"] == cn and
      abs(j["cost"]["ns_per_pte"] - cns / cp) < 1e-6 * cns / cp,
      "stats?since=<minute>: cost over the %d forks since then, exact" % cn)
st, j = get_json(P, "/api/v1/stats?comm=forker")
fkn = sql(db, "SELECT count(*) FROM fork WHERE parent_comm='forker'")[0][0]
fk = sorted(r[0] for r in sql(db, "SELECT copy_page_range_ns FROM fork WHERE parent_comm='forker'"
                                  " AND complete AND copy_page_range_ns IS NOT NULL"))
check(st == 200 and j["metrics"]["copy_page_range"]["count"] == fkn and
      abs(j["metrics"]["copy_page_range"]["max_ns"] - fk[-1]) <= fk[-1] * 0.01,
      "stats?comm=forker: count and max")
cpl = sql(db, "SELECT sum(copy_page_range_ns), sum(ptes) FROM fork WHERE parent_comm='forker' "
          "AND complete AND copy_page_range_ns IS NOT NULL AND ptes > 0")[0]
exact = cpl[0] / cpl[1]
check(abs(j["cost"]["ns_per_pte"] - exact) < 1e-6 * exact and "sampled" not in j["cost"],
      "stats?comm=forker: ns_per_pte equals sum(copy_page_range)/sum(ptes) (%.1f)" % exact)

# -- histogram, top, timeseries


def hist_upper(i):
    """analyzer/stats.c pt_hist_upper: 4 buckets per power of two."""
    if i == 0:
        return 0
    if i >= 1 + 40 * 4:
        return 2**64 - 1
    lg, sub = (i - 1) // 4, (i - 1) % 4
    if lg < 2:
        return (1 << lg) + (sub >> (2 - lg))
    return (1 << lg) + ((sub + 1) << (lg - 2)) - 1


UPPERS = [hist_upper(i) for i in range(1 + 40 * 4 + 1)]


def plain_bins(values):
    out = {}
    for v in values:
        le = next(u for u in UPPERS if v <= u)
        out[le] = out.get(le, 0) + 1
    return [{"le_ns": k, "count": out[k]} for k in sorted(out)]


for metric, col, where in (("copy_page_range", "copy_page_range_ns", "parent_comm='forker'"),
                           ("fork", dur, "1"),
                           ("max_lock_hold", "max_lock_hold_ns", "parent_comm='forker'")):
    q = "/api/v1/histogram?metric=%s" % metric + ("&comm=forker" if "forker" in where else "")
    st, j = get_json(P, q)
    rows = sql(db, "SELECT %s, complete FROM fork WHERE %s" % (col, where))
    # statistics are over complete forks; an incomplete one counts, its value does not
    vals = [v for v, complete in rows if v is not None and complete]
    check(st == 200 and j["bins"] == plain_bins(vals) and j["values"] == len(vals) and
          j["forks"] == len(rows) and "sampled" not in j,
          "histogram %s: every bin equals a count over the complete of all %d forks (%d bins)"
          % (q.split("?")[1], len(rows), len(j.get("bins", []))))
st, j = get_json(P, "/api/v1/top?limit=3")
cnt = sql(db, "SELECT parent_comm, count(*) c FROM fork GROUP BY parent_comm ORDER BY c DESC")
check(st == 200 and len(j["comms"]) == 3 and
      [c["forks"] for c in j["comms"]] == sorted([c["forks"] for c in j["comms"]], reverse=True),
      "top?limit=3: three comms, most forks first")
st, j = get_json(P, "/api/v1/timeseries?step=3600")
check(st == 200 and sum(p["count"] for p in j["points"]) == total and j["step_s"] == 3600,
      "timeseries step=3600: counts sum to every fork (%d points)" % len(j["points"]))
st, j = get_json(P, "/api/v1/timeseries?step=86400&metric=pte_pass_hold&since=-7d")
check(st == 200 and j["metric"] == "pte_pass_hold" and len(j["points"]) >= 7,
      "timeseries of pte_pass_hold, daily")

# -- 400s name the bad parameter
for path, name in (("/api/v1/forks?bogus=1", "bogus"), ("/api/v1/forks?limit=0", "limit"),
                   ("/api/v1/forks?limit=1001", "limit"), ("/api/v1/forks?limit=ten", "limit"),
                   ("/api/v1/forks?pid=-5", "pid"), ("/api/v1/forks?pid=99999999999", "pid"),
                   ("/api/v1/forks?min_us=x", "min_us"), ("/api/v1/forks?cursor=-1", "cursor"),
                   ("/api/v1/forks?since=yesterday", "since"),
                   ("/api/v1/forks?comm=" + "x" * 40, "comm"),
                   ("/api/v1/stats?since=12345", "since"), ("/api/v1/stats?until=soon", "until"),
                   ("/api/v1/histogram?metric=nope", "metric"),
                   ("/api/v1/top?limit=101", "limit"), ("/api/v1/timeseries?step=61", "step"),
                   ("/api/v1/timeseries?limit=100000", "limit"),
                   ("/api/v1/forks/1?x=1", "x")):
    st, j = get_json(P, path)
    check(st == 400 and name in j.get("error", ""), "400 naming %s: %s" % (name, path))

# -- 404 and 405
for path in ("/api/v1/nope", "/api/v2/forks", "/nope.html", "/", "/api/v1/forks/1/2"):
    st, j = get_json(P, path)
    check(st == 404 and "error" in j, "404 with JSON: %s" % path)
for method, path, allow in (("POST", "/api/v1/forks", "GET"), ("DELETE", "/healthz", "GET"),
                            ("PUT", "/metrics", "GET"), ("GET", "/api/v1/replays", "POST"),
                            ("POST", "/api/v1/stats", "GET")):
    st, hd, body = request(P, method, path)
    check(st == 405 and allow in hd.get("allow", "") and "error" in json.loads(body),
          "405 with Allow and JSON: %s %s" % (method, path))
st, hd, body = request(P, "HEAD", "/api/v1/stats")
check(st == 200 and body == b"", "HEAD /api/v1/stats: 200, no body")

# -- 414 and 431: ours are JSON; past the per-connection memory, libmicrohttpd's own
st, j = get_json(P, "/api/v1/forks?comm=" + "a" * 3000)
check(st == 414 and "error" in j, "URL over 2 KiB: 414 JSON")
st, j = get_json(P, "/healthz", headers={"X-Big": "b" * 9000})
check(st == 431 and "error" in j, "headers over 8 KiB: 431 JSON")
resp = raw(P, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: " + b"h" * 100000 + b"\r\n\r\n")
check(status_of(resp) == 431, "headers over the per-connection memory: 431 (got %d)"
      % status_of(resp))
resp = raw(P, b"GET /" + b"u" * 100000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
check(status_of(resp) in (414, 431), "URL over the per-connection memory: 414/431 (got %d)"
      % status_of(resp))
st, j = get_json(P, "/healthz")
check(st == 200, "still serving after oversized requests")

# -- keep-alive: several requests on one connection, no Connection: close
import http.client
c = http.client.HTTPConnection("127.0.0.1", P, timeout=10)
socks = set()
ok = True
for path in ("/healthz", "/api/v1/stats", "/metrics", "/api/v1/forks?limit=5",
             "/api/v1/nope"):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    socks.add(id(c.sock))
    ok = ok and r.getheader("Connection", "").lower() != "close" and not r.will_close
c.close()
check(ok and len(socks) == 1, "keep-alive: five requests (one a 404) on one connection")

# -- the parent's memory and the cost model on the fork object, against the columns
row = sql(db, "SELECT id, mem_rss_anon_bytes, mem_rss_file_bytes, mem_rss_shmem_bytes, "
              "mem_pte_bytes, mem_map_count, mem_child_exec, total_ns FROM fork WHERE "
              "mem_rss_anon_bytes IS NOT NULL AND mem_rss_file_bytes IS NOT NULL AND "
              "mem_rss_shmem_bytes IS NOT NULL AND total_ns > 0 LIMIT 1")[0]
st, j = get_json(P, "/api/v1/forks/%d" % row[0])
m = j.get("parent_mem") or {}
rss = row[1] + row[2] + row[3]
check(st == 200 and m.get("rss_anon_bytes") == row[1] and m.get("pte_bytes") == row[4] and
      m.get("map_count") == row[5] and m.get("child_exec") == (None if row[6] is None
                                                               else bool(row[6])),
      "fork %d: parent_mem is the mem_* columns" % row[0])
check(rss > 0 and abs(j["cost"]["ms_per_gib_rss"] - row[7] / 1e6 / (rss / 2**30)) < 1e-6 *
      j["cost"]["ms_per_gib_rss"], "fork %d: cost.ms_per_gib_rss = total / RSS" % row[0])
st, j = get_json(P, "/api/v1/forks/%d" % sql(db, "SELECT min(id) FROM fork")[0][0])
check(st == 200 and j["parent_mem"] is None and j["cost"]["gb_per_s"] is None,
      "a replayed fork: parent_mem null, no per-GB cost")

# -- /api/v1/doctor over the last day (the replay and a day of synthetic forks)
st, j = get_json(P, "/api/v1/doctor")
procs = {(p["comm"], p["pid"]): p for p in j.get("slow_processes", [])}
fk = procs.get(("forker", 96))
check(st == 200 and j["fork_ids"] == "store" and j["truncated"] is False and fk is not None,
      "/doctor: 200, store ids, the replayed forker examined")
if fk:
    best = sql(db, "SELECT id FROM fork WHERE parent_pid = 96 AND parent_comm = 'forker' AND "
                   "complete ORDER BY total_ns DESC LIMIT 1")[0][0]
    hp = next(f for f in fk["findings"] if f["rule"] == "page_tables_huge_pages")
    check(fk["slowest_forks"][0] == best and hp["verdict"] == "cannot_judge" and
          hp["advice"] is None, "/doctor: forker's slowest fork id %d; huge pages: cannot judge "
          "(only copy_page_range traced)" % best)
bad = []
for p in j.get("slow_processes", []):
    f = {x["rule"]: x for x in p["findings"]}
    g = p["figures"]
    if f["hypervisor_cost"]["verdict"] == "fires" and not (
            g["gb_per_s"] < 25 and g["rss_bytes"] >= 256 << 20):
        bad.append(p["comm"])
    if any((x["verdict"] == "fires") != (x["advice"] is not None) for x in p["findings"]):
        bad.append(p["comm"])
check(j.get("slow_processes") and not bad, "/doctor: every verdict agrees with its figures %s" %
      bad)
st, j = get_json(P, "/api/v1/doctor?comm=forker&max_procs=1")
check(st == 200 and [p["comm"] for p in j["slow_processes"]] == ["forker"] and
      j["range"]["comm"] == "forker", "/doctor?comm=forker&max_procs=1")
st, j = get_json(P, "/api/v1/doctor?slow_us=3600000000")
check(st == 200 and j["slow_processes"] == [] and j["forks"] > 0, "/doctor: none that slow")
for q in ("slow_us=0", "max_procs=x", "since=123", "bogus=1"):
    st, j = get_json(P, "/api/v1/doctor?" + q)
    check(st == 400 and "error" in j, "/doctor?%s: 400" % q)

srv.stop()
finish()
