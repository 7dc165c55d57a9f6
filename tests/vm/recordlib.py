"""Turns what a guest scenario left behind into manifest entries, and judges them.

Fed by the output directory of a scenario from tests/vm/scenario.py (traces, commands, stats, the
workloads' GT lines) and by the independent reader tests/vm/naive.py; feeds
tests/fixtures/vm/manifest.json (through tests/vm/record-fixtures) and the vm tier's checks
(tests/vm/vm_test.py). One entry per recording; sized for a handful of workload runs each.
"""

import os

import naive
import vmlib

PTE_TOLERANCE = 0.005


def run_truth(rec, i, run, outdir, naive_forks):
    gt = vmlib.read_ground_truth(os.path.join(outdir, f"{rec.name}.run{i}.gt"))
    start = next((g for g in gt if g.get("type") == "start"), None)
    if start is None:
        raise RuntimeError(f"{rec.name} run {i} ({run.argv}) printed no ground truth")
    hog = next((g for g in gt if g.get("type") == "hog"), None)
    entry = run.describe()
    entry.update({"parent_pid": start["pid"], "comm": start["comm"],
                  "hog_pid": hog["pid"] if hog else None,
                  "threads": [g["tid"] for g in gt if g.get("type") == "thread"],
                  "completed": any(g.get("type") == "end" for g in gt), "forks": []})
    for g in gt:
        if g.get("type") != "fork":
            continue
        f = {k: g[k] for k in ("seq", "kind", "child_pid") if k in g}
        f["parent_pid"] = g["parent_pid"]
        for k in ("pages_touched", "anon_huge_kb", "fork_us", "latest_fork_usec", "rss_bytes"):
            if k in g:
                f[k] = g[k]
        if "pages_touched" in g:
            f["ptes_expected"] = g["pages_touched"] - g.get("anon_huge_kb", 0) // 4
        entry["forks"].append(f)
    mine = [n for n in naive_forks if n["parent_pid"] == start["pid"]]
    keys = ("child_pid", "copy_page_range_calls", "ptes", "passes", "lock_breaks")
    if getattr(rec, "switches", False):
        keys += ("preempted",)
    entry["naive"] = [{k: n[k] for k in keys} for n in mine]
    return entry


def breaks_problems(entry, run, forks, breaks_key, preempted_key):
    """What is wrong with the lock breaks of one run's forks (dicts with `breaks_key`, and with
    `preempted_key` where sched_switch was recorded): a run with a CPU hog must show lock breaks,
    or, on a PREEMPT_RT kernel (the PTE lock sleeps: the copy is preempted with it held), a
    preemption while copying; a run without one shows none, unless the fork was seen preempted
    while copying (the guest's own tasks compete: trace-cmd's readers, kworkers; a break may also
    find no other task to run, so breaks can outnumber preemptions). Shared by record-fixtures
    (forks seen by trace-cmd report) and check_fixtures.py (forks ptescope reported)."""
    problems = []
    breaks = sum(f.get(breaks_key) or 0 for f in forks)
    preempted = sum(f.get(preempted_key) or 0 for f in forks)
    rt = entry.get("kernel", {}).get("preempt_rt", False)
    if run["breaks_forced"] and breaks == 0 and not (rt and preempted):
        problems.append(f"no lock break in forced run {run['args']}"
                        + (" and no preemption while copying" if rt else ""))
    if not run["breaks_forced"]:
        for f in forks:
            b, p = f.get(breaks_key) or 0, f.get(preempted_key)
            if b and not p:
                problems.append(f"{b} lock breaks in unforced run {run['args']} (child "
                                f"{f.get('child_pid')}, {p} preemptions recorded)")
    return problems


def check_recording(rec, entry):
    """Problems that make a recording unfit as a fixture (empty list: keep it)."""
    problems = []
    lost = entry["lost_events"]
    if bool(rec.buffer_kb) != lost:
        problems.append(f"lost events {lost}, expected {bool(rec.buffer_kb)}")
    for run in entry["runs"]:
        if not run["completed"]:
            problems.append(f"run {run['workload']} {run['args']} did not finish")
        if lost:
            continue
        seen = {n["child_pid"]: n for n in run["naive"]}
        for f in run["forks"]:
            if f["child_pid"] not in seen:
                problems.append(f"fork of child {f['child_pid']} not found by trace-cmd report")
        if rec.detail == "fork-path":
            continue
        problems += breaks_problems(entry, run, run["naive"], "lock_breaks", "preempted")
        if rec.detail == "full":
            for f in run["forks"]:
                n = seen.get(f["child_pid"])
                if n and "ptes_expected" in f and \
                        abs(n["ptes"] - f["ptes_expected"]) > PTE_TOLERANCE * f["pages_touched"]:
                    problems.append(f"child {f['child_pid']}: {n['ptes']} PTEs, expected "
                                    f"{f['ptes_expected']}")
    return problems


def analyse(rec, outdir, kernel):
    path = os.path.join(outdir, rec.filename)
    if not os.path.exists(path):
        raise RuntimeError(f"{rec.filename} was not recorded")
    if rec.fmt == "dat":
        stats = naive.dat_stats(path)
        forks = naive.parse_dat(path)
    else:
        with open(os.path.join(outdir, rec.name + ".stats")) as f:
            stats = naive.text_stats(f.read())
        forks = naive.parse_text(path)
    with open(os.path.join(outdir, rec.name + ".cmd")) as f:
        command = f.read().strip()
    # The command runs this script in the guest (the workload runs, in order): keep it verbatim.
    script = os.path.join(os.path.dirname(outdir), "runs", rec.name + ".sh")
    with open(script) as f:
        script_lines = [ln for ln in f.read().splitlines() if ln]
    lost = any(stats.get(k) for k in ("overrun", "commit_overrun", "dropped_events",
                                      "dropped_markers"))
    entry = {
        "file": rec.filename,
        "format": "trace.dat" if rec.fmt == "dat" else "text",
        "detail": rec.detail,
        "note": rec.note,
        "kernel": kernel,
        "command": command,
        "script": script_lines,
        "buffer_kb": rec.buffer_kb,
        "lost_events": lost,
        "stats": stats,
        "runs": [run_truth(rec, i, r, outdir, forks) for i, r in enumerate(rec.runs)],
    }
    return entry
