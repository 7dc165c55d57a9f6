#!/usr/bin/env python3
"""Replay of a real trace.dat checked against an independent reader.

Runs `trace-cmd report` on the trace.dat, reads its output with the deliberately naive
reader below (per pid: copy_page_range calls at depth 0, closed into a fork by the pid's
sched_process_fork event; vm_normal_page / _raw_spin_lock / __pte_alloc / __cond_resched
as direct children), and compares fork by fork with `ptescope replay --format json` of the
same .dat: child pids, VMAs, PTEs, passes, lock breaks, copy_page_range time. It also
replays the report text itself and checks that it gives the same forks as the .dat.

usage: check_dat_vs_report.py PTESCOPE TRACE.dat [EXPECT_FORKS EXPECT_COMM EXPECT_VMAS]
Exit 77 (skip) when trace-cmd is not installed.
"""
import json
import re
import shutil
import subprocess
import sys
import tempfile

LINE = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?:\S+\s+)?"
                  r"(?P<ts>\d+\.\d+):\s+(?P<ev>funcgraph_entry|funcgraph_exit|sched_process_fork):"
                  r"\s+(?P<rest>.*)$")
DUR = re.compile(r"([\d.]+) us")


def naive(report_path):
    forks, cur = [], {}
    for line in open(report_path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        pid, ev, rest = m.group("pid"), m.group("ev"), m.group("rest")
        st = cur.setdefault(pid, {"vmas": 0, "ptes": 0, "passes": 0, "breaks": 0, "cpr_ns": 0,
                                  "locks": 0, "in_pass": False, "first": True, "alloc": False,
                                  "open": False})
        if ev == "sched_process_fork":
            child = int(re.search(r"child_pid=(\d+)", rest).group(1))
            forks.append(dict(st, parent=int(pid), child=child))
            del cur[pid]
            continue
        bar = rest.index("|")
        body = rest[bar + 1:]
        depth = (len(body) - len(body.lstrip(" ")) - 2) // 2
        name = body.strip()
        dur = DUR.search(rest[:bar])
        if depth == 0:
            if name.startswith("copy_page_range()"):
                st["vmas"] += 1
                st["first"], st["alloc"], st["in_pass"], st["open"] = True, False, False, True
                if dur:  # a leaf
                    st["cpr_ns"] += round(float(dur.group(1)) * 1000)
                    st["open"] = False
            elif name == "}" and st["open"]:
                st["cpr_ns"] += round(float(dur.group(1)) * 1000)
                st["open"] = False
            continue
        if depth != 1 or not st["open"]:
            continue
        fn = re.match(r"([\w.]+)\(\)", name)
        if not fn:
            continue
        f = fn.group(1)
        if f == "vm_normal_page":
            st["ptes"] += 1
        elif f == "_raw_spin_lock":
            if st["in_pass"] and st["locks"] >= 2:
                st["in_pass"] = False
            if not st["in_pass"]:
                st["passes"] += 1
                if not st["first"] and not st["alloc"]:
                    st["breaks"] += 1
                st["in_pass"], st["locks"], st["first"], st["alloc"] = True, 0, False, False
            st["locks"] += 1
        elif f == "__cond_resched":
            st["in_pass"] = False
        elif f == "__pte_alloc":
            st["in_pass"], st["alloc"] = False, True
    return forks


def replay(ptescope, path):
    out = subprocess.run([ptescope, "replay", "--format", "json", "--quiet", path],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"ptescope replay {path} failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    ptescope, dat = sys.argv[1], sys.argv[2]
    if not shutil.which("trace-cmd"):
        print("trace-cmd not installed: skipped")
        return 77
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    with tempfile.NamedTemporaryFile("w", suffix=".txt") as rep:
        subprocess.run(["trace-cmd", "report", "-i", dat], stdout=rep, stderr=subprocess.DEVNULL,
                       check=True, timeout=600)
        rep.flush()
        ref = naive(rep.name)
        got = replay(ptescope, dat)
        got_text = replay(ptescope, rep.name)
    with tempfile.TemporaryDirectory() as tmp:
        v6 = tmp + "/v6.dat"
        conv = subprocess.run(["trace-cmd", "convert", "-i", dat, "--file-version", "6",
                               "--compression", "none", "-o", v6],
                              capture_output=True, timeout=600)
        got_v6 = replay(ptescope, v6) if conv.returncode == 0 else None
    check(got["inputs"][0]["format"] == "dat", "format detected as dat")
    check(got_text["inputs"][0]["format"] == "report-text", "report detected as report-text")
    # forks that copied anything (the reference only knows copy_page_range forks)
    forks = {f["child_pid"]: f for f in got["forks"] if f["child_pid"] is not None}
    check(len(ref) > 0, "the reference found forks")
    for r in ref:
        f = forks.get(r["child"])
        if f is None:
            fails.append(f"fork with child {r['child']} not found")
            continue
        for key, rkey in (("vmas", "vmas"), ("ptes", "ptes"), ("pte_passes", "passes"),
                          ("lock_breaks", "breaks"), ("copy_page_range_ns", "cpr_ns"),
                          ("parent_pid", "parent")):
            check(f[key] == r[rkey], f"child {r['child']}: {key} {f[key]} != reference {r[rkey]}")
        check(f["complete"], f"child {r['child']}: complete")
    # the report text replays to the same forks as the .dat
    text_forks = {f["child_pid"]: f for f in got_text["forks"] if f["child_pid"] is not None}
    for child, f in forks.items():
        t = text_forks.get(child)
        if t is None:
            fails.append(f"report text lost fork {child}")
            continue
        for key in ("vmas", "ptes", "pte_passes", "lock_breaks", "copy_page_range_ns", "complete"):
            check(f[key] == t[key], f"child {child}: {key} dat {f[key]} != report text {t[key]}")
    if got_v6 is None:
        fails.append("trace-cmd convert to v6 failed")
    else:
        check(open(dat, "rb").read(12)[10:11] in (b"6", b"7"), "input is a trace.dat")
        check(got_v6["forks"] == got["forks"], "v6 conversion replays to the same forks")
        check(got_v6["summary"] == got["summary"], "v6 conversion gives the same summary")
    if len(sys.argv) > 3:
        n, comm, vmas = int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        mine = [f for f in got["forks"] if f["parent_comm"] == comm]
        check(len(mine) == n, f"{len(mine)} forks of {comm}, expected {n}")
        for f in mine:
            check(f["vmas"] == vmas, f"fork {f['child_pid']}: {f['vmas']} VMAs, expected {vmas}")
    s = got["summary"]
    check(s["forks"] == len(got["forks"]), "summary counts the forks")
    for f in fails:
        print("FAIL:", f)
    print(f"{len(ref)} forks compared with the reference, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
