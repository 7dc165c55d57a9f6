#!/usr/bin/env python3
"""`trace-cmd report -R` (raw fields) replayed against the trace.dat it came from.

For each real trace.dat given, generates its raw report with trace-cmd and replays it:
- `-R -l -t` (raw fields, the flags column, nanosecond times) must give exactly the forks
  and the summary of the .dat replay: same functions, the kernel's own calltime/rettime,
  the irq context from the flags;
- `-R -l` must give the same forks except `ts_ns`, which it prints to the microsecond, and
  so must plain `-R` of the first file (the bundled recording). Without -l the report does
  not say which calls ran in interrupts: where an interrupt lands among a pass's calls
  (tests/fixtures/vm/locks.dat) its calls then count as the pass's, as with the default
  report text, so plain -R is compared on a recording without such interrupts only;
- the same raw text with every function name replaced by an address (what trace-cmd prints
  when the file has no symbols) keeps the addresses: no fork-path call is recognised, so only
  the sched_process_fork events make forks, with null phases.
Then replays the hand-edited overrun fixture (tests/fixtures/report-raw-overrun.txt) and
checks which forks are flagged graph_overrun.

usage: check_raw_report.py PTESCOPE OVERRUN_FIXTURE TRACE.dat...
Exit 77 (skip) when trace-cmd is not installed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


def replay(ptescope, path):
    out = subprocess.run([ptescope, "replay", "--format", "json", "--quiet", path],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        sys.exit(f"ptescope replay {path} failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def report(dat, opts, out_path):
    with open(out_path, "w") as out:
        subprocess.run(["trace-cmd", "report", *opts, "-i", dat], stdout=out,
                       stderr=subprocess.DEVNULL, check=True, timeout=900)


def compare(dat, got, ref, what, ts_slack):
    inp = got["inputs"][0]
    check(inp["format"] == "report-text", f"{what}: detected as {inp['format']}")
    check(inp["unparsed_lines"] == 0, f"{what}: {inp['unparsed_lines']} lines not understood")
    check(inp["events"] == ref["inputs"][0]["events"],
          f"{what}: {inp['events']} events, the .dat {ref['inputs'][0]['events']}")
    check(len(got["forks"]) == len(ref["forks"]),
          f"{what}: {len(got['forks'])} forks, the .dat {len(ref['forks'])}")
    for a, b in zip(ref["forks"], got["forks"]):
        for key in a:
            if key == "ts_ns" and a[key] is not None and b.get(key) is not None:
                ok = abs(a[key] - b[key]) <= ts_slack
            else:
                ok = a[key] == b.get(key)
            check(ok, f"{what}: fork {a['child_pid']}: {key} {b.get(key)}, the .dat {a[key]}")
    check(got["summary"] == ref["summary"], f"{what}: the summary differs from the .dat's")


def addresses_only(src, dst):
    """Every func=NAME as func=0xADDRESS, one address per name."""
    addr = {}

    def sub(m):
        name = m.group(1)
        addr.setdefault(name, 0xffffffff81000000 + 0x40 * len(addr))
        return f"func=0x{addr[name]:x}"

    with open(src) as f, open(dst, "w") as out:
        for line in f:
            out.write(re.sub(r"func=([^\s]+)", sub, line))


def check_addresses(ptescope, raw, tmp, what):
    path = tmp + "/addr.txt"
    addresses_only(raw, path)
    got = replay(ptescope, path)
    nfork = sum(1 for line in open(raw) if " sched_process_fork: " in line)
    check(got["inputs"][0]["unparsed_lines"] == 0, f"{what}, addresses: lines not understood")
    check(len(got["forks"]) == nfork,
          f"{what}, addresses: {len(got['forks'])} forks, {nfork} fork events")
    for f in got["forks"]:
        check(f["copy_page_range_ns"] is None and f["kernel_clone_ns"] is None,
              f"{what}, addresses: fork {f['child_pid']} has phases from unnamed calls")


def check_overrun(ptescope, fixture):
    got = replay(ptescope, fixture)
    flagged = {f["child_pid"]: "graph_overrun" in f["flags"] for f in got["forks"]}
    complete = {f["child_pid"]: f["complete"] for f in got["forks"]}
    want = {129: False, 130: False, 131: True, 132: False, 133: True, 134: False}
    check(flagged == want, f"overrun fixture: flagged {flagged}, want {want}")
    for child, fl in want.items():
        check(complete.get(child) == (not fl), f"overrun fixture: fork {child} complete "
              f"{complete.get(child)}")
    s = got["summary"]
    check(s["flagged"].get("graph_overrun") == 2, f"overrun fixture: summary {s['flagged']}")
    check(s["complete"] == 4, f"overrun fixture: {s['complete']} complete forks, want 4")


def main():
    ptescope, fixture, dats = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not shutil.which("trace-cmd"):
        print("trace-cmd not installed: skipped")
        return 77
    check_overrun(ptescope, fixture)
    smallest = min(dats, key=os.path.getsize)
    with tempfile.TemporaryDirectory() as tmp:
        for dat in dats:
            ref = replay(ptescope, dat)
            check(len(ref["forks"]) > 0, f"{dat}: the .dat replay found forks")
            report(dat, ["-R", "-l", "-t"], tmp + "/raw.txt")
            compare(dat, replay(ptescope, tmp + "/raw.txt"), ref, f"{dat} -R -l -t", 0)
            if dat == smallest:
                check_addresses(ptescope, tmp + "/raw.txt", tmp, dat)
            report(dat, ["-R", "-l"], tmp + "/raw.txt")
            compare(dat, replay(ptescope, tmp + "/raw.txt"), ref, f"{dat} -R -l", 1000)
            if dat == dats[0]:
                report(dat, ["-R"], tmp + "/raw.txt")
                compare(dat, replay(ptescope, tmp + "/raw.txt"), ref, f"{dat} -R", 1000)
            print(f"{dat}: {len(ref['forks'])} forks compared")
    for f in fails[:50]:
        print("FAIL:", f)
    print(f"{len(dats)} trace.dat files, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
