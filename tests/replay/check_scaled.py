#!/usr/bin/env python3
"""A recording N times the size replays to N times the forks, in bounded memory.

Makes a copy of TRACE 8 times its size with tests/bench/scale-dat (its CPUs' pages repeated,
their times moved on; what replay-bench's scale rows read) in SCRATCH, then checks:
- trace-cmd report reads the copy whole: 8 times TRACE's lines (one header line once);
- ptescope replay of it reports 8 times TRACE's events and forks, copy k's forks equal to
  TRACE's in every field but their time, which moves by the same step from copy to copy;
- the peak resident memory of the replay (ptescope or its helper, the larger) is at most
  12 MiB above the 1x replay's: the page walk gives the file's pages back as it goes (the
  copy is about 40 MB; a walk that kept them would be some 35 MB above).
usage: check_scaled.py PTESCOPE SCALE_DAT TRACE SCRATCH
"""
import json
import os
import subprocess
import sys

N = 8
RSS_SLACK_KB = 12 * 1024


def replay(pt, path, scratch):
    """The JSON report of @path and the peak RSS (KiB) of the run's processes, as GNU time
    reports it (ptescope's, which counts the helper it waited for; from this Python process,
    wait4() would count the memory the child had before its exec)."""
    out, rss = os.path.join(scratch, "report.json"), os.path.join(scratch, "rss")
    with open(out, "wb") as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, pt, "replay", "--quiet",
                        "--format", "json", path], stdout=f, check=True, timeout=600)
    with open(out) as f, open(rss) as r:
        return json.load(f), int(r.read().split()[-1])


def report_lines(path):
    """The lines trace-cmd report prints for @path, None if it fails."""
    p = subprocess.Popen(["trace-cmd", "report", "-i", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    n = sum(chunk.count(b"\n") for chunk in iter(lambda: p.stdout.read(1 << 20), b""))
    return n if p.wait(timeout=600) == 0 else None


def check_forks(one, many, fails):
    if len(many) != N * len(one):
        fails.append(f"{len(many)} forks, not {N} x {len(one)}")
        return
    step = None
    for k in range(N):
        for a, b in zip(one, many[k * len(one):(k + 1) * len(one)]):
            rest_a = {x: y for x, y in a.items() if x not in ("ts_ns", "input")}
            rest_b = {x: y for x, y in b.items() if x not in ("ts_ns", "input")}
            if rest_a != rest_b:
                fails.append(f"copy {k}: fork of child {b.get('child_pid')} differs from 1x")
                return
            if a["ts_ns"] is None or b["ts_ns"] is None:
                continue
            d = (b["ts_ns"] - a["ts_ns"]) // k if k else 0
            if k and step is None:
                step = d
            if k and d != step:
                fails.append(f"copy {k}: time moved by {d} a copy, not {step}")
                return


def main():
    pt, scale_dat, trace, scratch = sys.argv[1:5]
    if not os.access("/usr/bin/time", os.X_OK):
        print("SKIP: no /usr/bin/time (Debian package time)")
        return 77
    os.makedirs(scratch, exist_ok=True)
    copy = os.path.join(scratch, f"x{N}.dat")
    if os.path.exists(copy):
        os.unlink(copy)
    subprocess.run([sys.executable, scale_dat, trace, str(N), copy], check=True, timeout=600)
    fails = []
    l1, ln = report_lines(trace), report_lines(copy)
    if l1 is None or ln != N * (l1 - 1) + 1:
        fails.append(f"trace-cmd report: {ln} lines of the copy, 1x has {l1}")
    one, rss1 = replay(pt, trace, scratch)
    many, rssn = replay(pt, copy, scratch)
    ev1, evn = one["inputs"][0]["events"], many["inputs"][0]["events"]
    if evn != N * ev1:
        fails.append(f"{evn} events, not {N} x {ev1}")
    check_forks(one["forks"], many["forks"], fails)
    if rssn > rss1 + RSS_SLACK_KB:
        fails.append(f"peak RSS {rssn} KiB at {N}x against {rss1} KiB at 1x")
    os.unlink(copy)
    for f in fails:
        print("FAIL:", f)
    print(f"{N}x: {evn} events, {len(many['forks'])} forks, peak RSS {rssn} KiB "
          f"(1x: {rss1} KiB); {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
