#!/usr/bin/env python3
"""Replay of a real function_graph text capture whose buffer wrapped.

The file (the tracefs `trace` file, default options: CPU and duration columns, no task
names, no timestamps) starts in the middle of a fork. Checked: the format is detected, every
line is read (trace lines become events, none is left unparsed), every vm_normal_page call
in the file is counted in some fork, every copy_page_range call at depth 0 (including the
one whose entry was lost, closing as `} /* copy_page_range */`) is a VMA of some fork, the
31484.93 us call is inside a fork, and no fork is reported complete: without fork events,
task names or timestamps the boundaries are inferred, and the first fork is cut.

usage: check_partial_text.py PTESCOPE FILE
"""
import json
import re
import subprocess
import sys


def main():
    ptescope, path = sys.argv[1], sys.argv[2]
    lines = open(path, errors="replace").read().splitlines()
    trace_lines = [l for l in lines if re.match(r"^\s*\d+\)", l)]
    # a call an interrupt landed in prints as "vm_normal_page() {", the others as a leaf
    vnp = sum(1 for l in trace_lines if re.search(r"vm_normal_page\(\)( \{|;)", l))
    cpr0 = sum(1 for l in trace_lines if re.search(r"\|  (copy_page_range\(\)|\} /\* copy_page_range \*/)", l))
    out = subprocess.run([ptescope, "replay", "--format", "json", "--quiet", path],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"replay failed: {out.stderr.strip()}")
    rep = json.loads(out.stdout)
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    inp = rep["inputs"][0]
    check(inp["format"] == "text", f"format {inp['format']}")
    check(inp["unparsed_lines"] == 0, f"{inp['unparsed_lines']} lines not understood")
    check(inp["events"] == len(trace_lines), f"{inp['events']} events for {len(trace_lines)} trace lines")
    forks = rep["forks"]
    check(len(forks) >= 1, "forks found")
    check(sum(f["ptes"] for f in forks) == vnp, f"PTEs {sum(f['ptes'] for f in forks)} != {vnp} vm_normal_page lines")
    # depth-0 calls: leaves + opened ones closed by "}" + the orphan closing with a tail comment
    vmas = sum(f["vmas"] for f in forks)
    check(vmas == cpr0, f"VMAs {vmas}, {cpr0} copy_page_range calls at depth 0")
    check(all(not f["complete"] for f in forks), "no fork complete")
    check(all(("partial" in f["flags"]) or ("boundary_inferred" in f["flags"]) for f in forks), "all flagged")
    check(any(f["copy_page_range_ns"] >= 31484930 for f in forks), "the 31484.93 us call is in a fork")
    check(all(f["ts_ns"] is None and f["max_lock_hold_ns"] is None for f in forks),
          "no times invented for a capture without timestamps")
    for f in fails:
        print("FAIL:", f)
    print(f"{len(forks)} forks, {vnp} PTE lines, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
