#!/usr/bin/env python3
"""Checks `ptescope replay --format json` on the real-kernel fixtures against their ground truth.

Fed by tests/fixtures/vm/manifest.json (written by tests/vm/record-fixtures: what each workload
did, per recording) and by the ptescope binary under test; used by the `replay`-label ctest
vm_fixtures (no VM needed) and, through check_report(), by the `vm` tier on fresh recordings.
Checks, per workload run: every fork it made is found with its parent and child pid and reported
complete; PTEs copied match the pages it touched (minus those THP backed) within 0.5% wherever the
report gives a count, and always in full-graph recordings; VMAs and lock breaks equal to what
`trace-cmd report` showed (the manifest's naive counts); lock breaks > 0 in runs that forced them
(or, on a PREEMPT_RT kernel, a preemption while copying) and 0 elsewhere unless each came with a
recorded preemption (locks and full detail; recordlib.breaks_problems); a recording with lost events says so in its input and
flags every fork of the workload ("lost_events" or "partial", complete=false) instead of
reporting it whole.

Usage: check_fixtures.py PTESCOPE [FIXTURE_DIR] [--only FILE,...]
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recordlib import breaks_problems  # noqa: E402

LOSS_FLAGS = {"lost_events", "partial"}
DEFAULT_TOLERANCE = 0.005


def _fmt_fork(f):
    keys = ("parent_pid", "child_pid", "ptes", "lock_breaks", "complete", "flags")
    return "{" + ", ".join(f"{k}={f.get(k)!r}" for k in keys) + "}"


def check_report(entry, report, tolerance=DEFAULT_TOLERANCE):
    """Problems found comparing one manifest entry with ptescope's JSON report of its trace."""
    problems = []
    name = entry["file"]
    inputs = report.get("inputs") or []
    if len(inputs) != 1:
        return [f"{name}: report has {len(inputs)} inputs, expected 1"]
    # The brief names the input key lost_events; the CLI writes events_lost (+ events_lost_unknown
    # when the trace shows a loss it cannot count): accept either.
    inp = inputs[0]
    lost_reported = inp.get("lost_events", inp.get("events_lost")) or \
        inp.get("events_lost_unknown") or False
    if entry["lost_events"]:
        if not lost_reported:
            problems.append(f"{name}: trace lost events ({entry['stats']}) but the report says "
                            f"lost_events={lost_reported!r}")
    elif lost_reported:
        problems.append(f"{name}: report says lost_events={lost_reported!r}, trace lost none")
    forks = report.get("forks") or []
    by_child = {}
    for f in forks:
        if f.get("child_pid") is not None:
            by_child.setdefault(f["child_pid"], []).append(f)
    for run in entry["runs"]:
        label = f"{name} [{run['workload']} {' '.join(run['args'])}]"
        if entry["lost_events"]:
            mine = [f for f in forks if f.get("parent_pid") == run["parent_pid"]]
            if not mine:
                problems.append(f"{label}: no fork of parent {run['parent_pid']} reported")
            for f in mine:
                if f.get("complete") is not False or not LOSS_FLAGS & set(f.get("flags") or []):
                    problems.append(f"{label}: fork reported whole despite lost events: "
                                    f"{_fmt_fork(f)}")
            continue
        mine = []
        for gt in run["forks"]:
            got = [f for f in by_child.get(gt["child_pid"], [])
                   if f.get("parent_pid") == gt["parent_pid"]]
            if len(got) != 1:
                problems.append(f"{label}: fork {gt['parent_pid']}->{gt['child_pid']} found "
                                f"{len(got)} times")
                continue
            f = got[0]
            naive = next((n for n in run.get("naive", []) if n["child_pid"] == gt["child_pid"]),
                         None)
            if naive and f.get("vmas") is not None and \
                    f["vmas"] != naive["copy_page_range_calls"]:
                problems.append(f"{label}: fork ->{gt['child_pid']}: {f['vmas']} VMAs, trace-cmd "
                                f"report shows {naive['copy_page_range_calls']}")
            if f.get("complete") is not True or LOSS_FLAGS & set(f.get("flags") or []):
                problems.append(f"{label}: fork ->{gt['child_pid']} not complete: {_fmt_fork(f)}")
            if "ptes_expected" in gt:
                ptes = f.get("ptes")
                if ptes is None:
                    if entry["detail"] == "full":
                        problems.append(f"{label}: fork ->{gt['child_pid']}: ptes null in a "
                                        "full-graph recording")
                elif abs(ptes - gt["ptes_expected"]) > tolerance * gt["pages_touched"]:
                    problems.append(f"{label}: fork ->{gt['child_pid']}: ptes {ptes}, expected "
                                    f"{gt['ptes_expected']} (pages touched {gt['pages_touched']}, "
                                    f"tolerance {tolerance:.1%})")
            if entry["detail"] in ("locks", "full"):
                lb = f.get("lock_breaks")
                if lb is None:
                    problems.append(f"{label}: fork ->{gt['child_pid']}: lock_breaks null")
                    continue
                mine.append(f)
                naive = next((n for n in run.get("naive", [])
                              if n["child_pid"] == gt["child_pid"]), None)
                if naive and naive["lock_breaks"] != lb:
                    problems.append(f"{label}: fork ->{gt['child_pid']}: lock_breaks {lb}, "
                                    f"trace-cmd report shows {naive['lock_breaks']}")
        if entry["detail"] in ("locks", "full") and mine:
            # copy_resched is null where the recording has no sched_switch: breaks then need
            # a competing task
            problems += [f"{label}: {p}" for p in
                         breaks_problems(entry, run, mine, "lock_breaks", "copy_resched")]
    return problems


def replay(ptescope, path):
    """Runs `ptescope replay --format json path`; returns (report or None, error text)."""
    try:
        p = subprocess.run([ptescope, "replay", "--format", "json", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if p.returncode != 0:
        return None, f"exit {p.returncode}: {p.stderr.strip()[:500]}"
    try:
        return json.loads(p.stdout), ""
    except json.JSONDecodeError as e:
        return None, f"not JSON ({e}): {p.stdout[:200]!r}"


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--only")]
    only = None
    for a in argv[1:]:
        if a.startswith("--only="):
            only = set(a.split("=", 1)[1].split(","))
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    ptescope = args[0]
    fixdir = args[1] if len(args) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "vm")
    with open(os.path.join(fixdir, "manifest.json")) as f:
        manifest = json.load(f)
    tol = manifest.get("pte_tolerance", DEFAULT_TOLERANCE)
    failed = 0
    for entry in manifest["fixtures"]:
        if only and entry["file"] not in only:
            continue
        report, err = replay(ptescope, os.path.join(fixdir, entry["file"]))
        problems = [f"{entry['file']}: ptescope replay failed: {err}"] if report is None \
            else check_report(entry, report, tol)
        nforks = sum(len(r["forks"]) for r in entry["runs"])
        if problems:
            failed += 1
            print(f"FAIL {entry['file']} ({nforks} workload forks)")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"ok   {entry['file']} ({nforks} workload forks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
