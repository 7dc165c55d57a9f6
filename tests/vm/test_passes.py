#!/usr/bin/env python3
"""The default capture's passes from call sites against function_graph, on a real kernel.

Fed by the vm harness (vmlib: a kernel chosen by --kernel), the workloads of tests/vm/workloads, the
ptescoped under test and the ptescope CLI (to replay the reference recording on the host). One boot
(2 vCPUs): ptescoped starts with its defaults (fork detail by kprobes, the two pass probes inside
copy_page_range found from the live code), and while it runs trace-cmd records function_graph at
the pte level (kernel_clone's graph with the PTE locks, their unlocks, __cond_resched, __pte_alloc
and vm_normal_page: every PTE) at the top level, which the daemon leaves free. The same forks are so
measured twice: forker of 64 MiB and 256 MiB, alone and beside a CPU hog on its CPU (lock breaks).
For every workload fork the daemon's record must have (the graph replayed by ptescope is the
reference):
  - pte_passes and lock_breaks equal to the graph's;
  - ptes within 0.5% of the graph's vm_normal_page count;
  - per pass, in order: the same new-PMD/resumed marks; the hold times agree as HOLD_* below
    says (the median difference within 5%, 90% of passes within 25% + 50 us);
  - no pass_mismatch flag, passes armed in /api/v1/status, and the pass plan cached: a second
    start reads it from the cache, and its fork has passes too.
Then tracefs must read back as before, and the kernel log show no oops, BUG or lockup. Prints one
line per kernel for docs/kernels.md. Exit 77 (skip) when the VM cannot be had.
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmlib  # noqa: E402

# The reference's functions (the pte level; each -l only where the kernel can trace it).
GRAPH_FUNCS = ["kernel_clone", "copy_process", "dup_mmap", "copy_page_range", "_raw_spin_lock",
               "_raw_spin_unlock", "rt_spin_lock", "rt_spin_unlock", "__cond_resched",
               "__pte_alloc", "add_swap_count_continuation", "vm_normal_page"]
PTE_TOLERANCE = 0.005
# Holds, pass by pass: the probes' run from the call that takes the child's PTE lock to the call
# that drops it; the graph's from the lock function's entry to the unlock's return, with its own
# tracing of every PTE inside, and where a kernel preempts at the unlock (lazy and full
# preemption, rt) the time off the CPU: passes that broke their lock are left out for that; an
# interrupt or a preemption between the map-and-lock call and the lock inside it lands in the
# probes' alone. Measured on the five kernels (5 runs, 600-731 passes each, breaking ones in):
# the median of (graph - probes) / graph 0.2-0.3%, its 10% and 90% quantiles -0.021 and +0.145,
# a few passes off by more either way (the 1% quantile -0.25, the 99% +0.97); with 7.2's breaks
# out the 90% quantile fell from +0.70 to (see docs/kernels.md).
HOLD_MEDIAN_RANGE = (-0.05, 0.05)
HOLD_NEAR = 0.25	     # a pass agrees when |graph - probes| <= 25% of the graph's + 50 us
HOLD_NEAR_SLACK_NS = 50000
HOLD_NEAR_SHARE = 0.90       # ... and 90% of passes must

SCENARIO = vmlib.GUEST_PRELUDE + r"""
mkdir -p /var/lib/ptescope
lflags() { for f in "$@"; do grep -qx "$f" $T/available_filter_functions && printf -- '-l %s ' "$f"; done; }
snap() {
	for f in current_tracer tracing_on trace_clock set_event set_ftrace_filter \
		set_graph_function options/record-cmd kprobe_events; do
		printf '%s: ' $f; cat $T/$f 2>/dev/null | tr '\n' ' '; echo
	done
	ls $T/instances
}
dmesg -c > $O/dmesg-boot
snap > $O/before
D="ptescoped --capture graph --state-file /var/lib/ptescope/tracefs-state --poll-ms 100"
start() { # name
	$D --db /tmp/$1.db 2>$O/$1.log &
	PID=$!
	for k in $(seq 3000); do
		grep -q 'ready:' $O/$1.log && return 0
		kill -0 $PID 2>/dev/null || { echo "daemon $1 died"; return 1; }
		sleep 0.1
	done
	echo "daemon $1 not ready in 300 s"; kill -KILL $PID; return 1
}
stop() { # name
	sleep 1.5 # the forks' last events read and stored
	wget -q -O $O/$1.status http://127.0.0.1:9466/api/v1/status
	kill -TERM $PID; wait $PID; echo $? > $O/$1.exit
	cp /tmp/$1.db $O/
}
cat > /tmp/work.sh <<'EOF'
forker --mib 64 --forks 2 --cpu 1 > /tmp/out/alone64.gt
hog --cpu 1 --seconds 300 > /dev/null & H=$!
sleep 0.2
forker --mib 64 --forks 3 --cpu 1 > /tmp/out/hog64.gt
forker --mib 256 --forks 2 --cpu 1 > /tmp/out/hog256.gt
kill $H; wait $H 2>/dev/null
forker --mib 256 --forks 1 --cpu 1 > /tmp/out/alone256.gt
EOF
echo "PTESCOPE-STEP: daemon"
start main || exit 1
# which probes the kernel jump-optimized (the rest trap with int3)
mount -t debugfs none /sys/kernel/debug 2>/dev/null
cat /sys/kernel/debug/kprobes/list > $O/kprobes.list 2>/dev/null
echo "PTESCOPE-STEP: workloads under function_graph"
timeout 900 trace-cmd record -C mono -p function_graph -g kernel_clone $(lflags @FUNCS@) \
	-e sched:sched_process_fork -b 32768 -o $O/graph.dat -- sh /tmp/work.sh > $O/trace-cmd.log 2>&1 ||
	echo "step trace-cmd: exit $?"
stop main
echo "PTESCOPE-STEP: second start (cached plan)"
start cached || exit 1
forker --mib 16 --forks 1 > $O/cached.gt
stop cached
ls -la /var/lib/ptescope > $O/statedir
snap > $O/after
dmesg > $O/dmesg
"""


def read(d, name):
    try:
        with open(os.path.join(d, name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def gt_children(out, name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return []
    return [g["child_pid"] for g in vmlib.read_ground_truth(p) if g.get("type") == "fork"]


def db_forks(path):
    """child pid -> (fork row as a dict, its passes in order: dicts of vma, ptes, start_ns,
    hold_ns, new_pmd, resumed). The store packs a fork's passes in one row
    (store/store_passes.c: 32 bytes a pass, -1 for a null)."""
    out = {}
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    for f in con.execute("SELECT * FROM fork"):
        passes = []
        row = con.execute("SELECT data FROM fork_pass WHERE fork_id = ?", (f["id"],)).fetchone()
        for vma, ptes, start, hold, flags, _ in struct.iter_unpack("<iiqqII", row[0] if row
                                                                   else b""):
            passes.append({"vma": vma, "ptes": None if ptes < 0 else ptes,
                           "start_ns": None if start < 0 else start,
                           "hold_ns": None if hold < 0 else hold, "new_pmd": flags & 1,
                           "resumed": (flags >> 1) & 1})
        out[f["child_pid"]] = (dict(f), passes)
    con.close()
    return out


def flags_of(row):
    """The flag names of a stored fork's flags bit set (analyzer/fork.h order)."""
    names = ["lost_events", "partial", "boundary_inferred", "graph_overrun", "unknown_loop",
             "pass_mismatch"]
    return [n for i, n in enumerate(names) if row["flags"] & (1 << i)]


def compare_fork(label, child, got, ref, bad):
    """One workload fork: the daemon's record against the graph's. Returns the holds compared."""
    f, passes = got
    r, rpasses = ref
    name = f"{label} fork -> {child}"
    if flags_of(f):
        bad(f"{name}: flagged {flags_of(f)}")
    for key in ("pte_passes", "lock_breaks"):
        if f[key] is None or f[key] != r[key]:
            bad(f"{name}: {key} {f[key]}, the graph's {r[key]}")
    if f["ptes"] is None or r["ptes"] is None or \
            abs(f["ptes"] - r["ptes"]) > PTE_TOLERANCE * max(r["ptes"], 1):
        bad(f"{name}: ptes {f['ptes']}, the graph's {r['ptes']} (tolerance 0.5%)")
    holds = []
    if len(passes) != len(rpasses):
        bad(f"{name}: {len(passes)} pass rows, the graph's {len(rpasses)}")
        return holds
    for i, (p, q) in enumerate(zip(passes, rpasses)):
        if (p["new_pmd"], p["resumed"]) != (q["new_pmd"], q["resumed"]):
            bad(f"{name}: pass {i} new_pmd/resumed {p['new_pmd']}/{p['resumed']}, the graph's "
                f"{q['new_pmd']}/{q['resumed']}")
        if p["hold_ns"] is None or q["hold_ns"] is None:
            bad(f"{name}: pass {i} hold {p['hold_ns']}, the graph's {q['hold_ns']}")
            continue
        # a pass that broke its lock: where the kernel preempts at the unlock (lazy, full,
        # rt) the graph's hold runs on through the time off the CPU, the probe's does not
        if i + 1 < len(passes) and passes[i + 1]["resumed"]:
            continue
        holds.append((p["hold_ns"], q["hold_ns"]))
    return holds


def check(out, ptescope, bad):
    for name in ("main", "cached"):
        if read(out, name + ".exit") != "0\n":
            bad(f"daemon {name}: exit {read(out, name + '.exit')!r}; log:\n{read(out, name + '.log')}")
    st = json.loads(read(out, "main.status") or "{}")
    passes = (st.get("capture") or {}).get("passes") or {}
    if passes.get("state") != "armed":
        bad(f"status: passes {passes}")
    if (st.get("live") or {}).get("pass_mismatch") != 0:
        bad(f"status: live {st.get('live')}")
    cached = ((json.loads(read(out, "cached.status") or "{}").get("capture") or {})
              .get("passes") or {})
    if cached.get("state") != "armed" or not cached.get("from_cache"):
        bad(f"second start: passes {cached} (expected armed from the cache)")
    if "callsite-" not in (read(out, "statedir") or ""):
        bad(f"no cached plan in the state directory:\n{read(out, 'statedir')}")
    before, after = read(out, "before"), read(out, "after")
    if before != after:
        bad(f"tracefs not as before:\n--- before\n{before}--- after\n{after}")
    for line in (read(out, "dmesg") or "").splitlines():
        if any(w in line for w in ("BUG", "Oops", "soft lockup", "rcu_sched self-detected",
                                   "WARNING:", "general protection")):
            bad(f"kernel log: {line}")
    graph = os.path.join(out, "graph.dat")
    if not os.path.exists(graph):
        bad(f"no reference recording; trace-cmd said:\n{read(out, 'trace-cmd.log')}")
        return None
    refdb = os.path.join(out, "graph.db")
    if os.path.exists(refdb):
        os.unlink(refdb)
    r = subprocess.run([ptescope, "replay", "--db", refdb, graph], capture_output=True, text=True)
    if r.returncode:
        bad(f"ptescope replay of the reference: {r.stderr.strip()}")
        return None
    got, ref = db_forks(os.path.join(out, "main.db")), db_forks(refdb)
    rows, holds = [], []
    for label in ("alone64", "hog64", "hog256", "alone256"):
        for child in gt_children(out, label + ".gt"):
            if child not in got or child not in ref:
                bad(f"{label} fork -> {child}: not recorded (daemon: {child in got}, graph: "
                    f"{child in ref})")
                continue
            holds += compare_fork(label, child, got[child], ref[child], bad)
            f = got[child][0]
            rows.append(f"{label}:{f['pte_passes']}/{f['lock_breaks']}/{f['ptes']}")
    cached_children = gt_children(out, "cached.gt")
    cdb = os.path.join(out, "cached.db")
    if not cached_children or not os.path.exists(cdb):
        bad("second start: no fork recorded")
    else:
        c = db_forks(cdb).get(cached_children[0])
        if not c or not c[0]["pte_passes"] or flags_of(c[0]):
            bad(f"second start: fork -> {cached_children[0]}: {c and c[0]}")
    if not holds:
        bad("no pass holds compared")
        return None
    rel = sorted((g - c) / g for c, g in holds if g > 0)
    extra = statistics.median(rel)
    near = sum(abs(g - c) <= HOLD_NEAR * g + HOLD_NEAR_SLACK_NS for c, g in holds) / len(holds)
    print(f"holds: {len(holds)} passes, {near:.1%} within 25% + 50 us of the graph's; "
          f"(graph - probes) / graph quantiles 1% {rel[len(rel) // 100]:+.3f} "
          f"10% {rel[len(rel) // 10]:+.3f} 50% {extra:+.3f} 90% {rel[9 * len(rel) // 10]:+.3f} "
          f"99% {rel[99 * len(rel) // 100]:+.3f}")
    if not HOLD_MEDIAN_RANGE[0] <= extra <= HOLD_MEDIAN_RANGE[1]:
        bad(f"the graph's holds are a median {extra:+.1%} off the probes' (expected "
            f"{HOLD_MEDIAN_RANGE[0]:+.0%}..{HOLD_MEDIAN_RANGE[1]:+.0%})")
    if near < HOLD_NEAR_SHARE:
        bad(f"only {near:.1%} of the passes' holds within 25% + 50 us of the graph's "
            f"(expected {HOLD_NEAR_SHARE:.0%})")
    return rows, extra, len(holds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--workloads-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--ptescoped", required=True)
    ap.add_argument("--ptescope", required=True)
    ap.add_argument("--timeout", type=int, default=1800)
    vmlib.add_kernel_option(ap)
    a = ap.parse_args()
    scenario = SCENARIO.replace("@FUNCS@", " ".join(GRAPH_FUNCS))
    try:
        kernel = vmlib.get_kernel(a.cache, a.kernel)
        bins = vmlib.standard_binaries(a.workloads_dir)
        bins.append(("usr/sbin/ptescoped", a.ptescoped))
        os.makedirs(a.work, exist_ok=True)
        initrd = vmlib.build_initramfs(os.path.join(a.work, "initramfs.cpio"), kernel, bins)
        share = os.path.join(a.work, "share")
        shutil.rmtree(share, ignore_errors=True)
        os.makedirs(share)
        status, secs = vmlib.boot(kernel, initrd, share, scenario, timeout_s=a.timeout,
                                  mem_mib=2048, progress=True)
    except vmlib.VmUnavailable as e:
        print(f"skip: {e}")
        return vmlib.SKIP
    except vmlib.VmFailed as e:
        print(f"FAIL: {e}")
        return 1
    out = os.path.join(share, "out")
    print(f"guest: {kernel.release} ({a.kernel}), scenario exit {status}, {secs:.0f} s")
    problems = []
    for line in (read(share, "scenario.log") or "").splitlines():
        if line.startswith("step ") or "died" in line or "not ready" in line:
            problems.append(line)
    res = check(out, a.ptescope, problems.append)
    for p in problems:
        print("FAIL:", p)
    if res:
        rows, extra, n = res
        print(f"passes/breaks/ptes per fork ({a.kernel}): {' '.join(rows)}; graph's extra hold "
              f"time over the probes': median {extra:.1%} of {n} passes")
    placed = [" ".join(line.split()[2:]) for line in (read(out, "kprobes.list") or "").splitlines()
              if "copy_page_range+" in line and "[FTRACE]" not in line]
    print(f"pass probes as the kernel placed them: {'; '.join(placed) or 'unknown (no debugfs)'} "
          f"([OPTIMIZED]: a jump; else an int3 trap)")
    if problems:
        print(vmlib.guest_report(share, lines=60))
        return 1
    print("ok: passes from call sites equal function_graph's on", kernel.release)
    return 0


if __name__ == "__main__":
    sys.exit(main())
