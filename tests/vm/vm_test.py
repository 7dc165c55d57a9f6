#!/usr/bin/env python3
"""The `vm` tier: fresh recordings on Debian's kernel, replayed by ptescope inside the guest.

Fed by the workloads built by tests/vm/CMakeLists.txt, the ptescope binary under test (optional:
without it only the recording side is checked) and the VM harness (tests/vm/vmlib.py). One boot
records two trace.dat files with trace-cmd (lock-level detail: every workload, including a fork
storm of thousands, a multi-threaded parent, vfork, clone3, forced lock breaks and Redis BGSAVE when
redis-server is installed; full graph: a 16 MiB fork for the PTE count), runs `ptescope replay
--format json` on each inside the guest (the binary and its libraries travel in the initramfs), and
brings the JSON back. The host then checks it against the workloads' ground truth with
check_fixtures.check_report, and against ptescope run on the host on the same file.

Lock breaks are probabilistic (a tick must land inside a copy pass): the expectation per run is
what the independent reader (`trace-cmd report`, tests/vm/naive.py) saw, not what was hoped for.
Exits 77 when the VM cannot be had (no qemu, no kernel package). Prints how long the VM part took.
"""

import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_fixtures  # noqa: E402
import vmlib  # noqa: E402
from recordlib import analyse, check_recording  # noqa: E402
from scenario import Recording, Run, guest_script  # noqa: E402


def forker(*args):
    return ["forker", "--cpu", "1"] + [str(a) for a in args]


def plan(with_redis, storm):
    runs = [
        Run(forker("--mib", 16, "--forks", 2), note="THP off"),
        Run(forker("--mib", 128, "--forks", 3), hog_cpu=1, note="CPU hog on the same CPU"),
        Run(forker("--mib", 16, "--forks", 2, "--thp", "on"), note="THP on"),
        Run(forker("--mib", 16, "--forks", 2, "--threads", 8), note="multi-threaded parent"),
        Run(["forker", "--mib", "8", "--forks", "3", "--kind", "vfork"], note="vfork"),
        Run(["forker", "--mib", "8", "--forks", "3", "--kind", "clone3"], note="clone3"),
        Run(["forkstorm", "--forks", str(storm)], note="fork storm"),
    ]
    if with_redis:
        runs.append(Run(["redis-bgsave"], note="Redis BGSAVE"))
    return [
        Recording("vm-locks", "dat", "locks", runs),
        Recording("vm-full", "dat", "full", [Run(forker("--mib", 32, "--forks", 1))]),
    ]


GUEST_REPLAY = r"""
for f in /host/out/*.dat; do
	n=${f%.dat}
	s=$(cut -d' ' -f1 /proc/uptime)
	ptescope replay --format json "$f" > $n.guest.json 2> $n.guest.err
	echo $? > $n.guest.rc
	e=$(cut -d' ' -f1 /proc/uptime)
	echo "ptescope replay ${f##*/} in the guest: exit $(cat $n.guest.rc), $s -> $e s uptime"
done
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--workloads-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--ptescope")
    ap.add_argument("--storm", type=int, default=2000)
    ap.add_argument("--timeout", type=int, default=600)
    vmlib.add_kernel_option(ap)
    args = ap.parse_args()

    t0 = time.monotonic()
    try:
        vmlib.find_qemu()
        kernel = vmlib.get_kernel(args.cache, args.kernel)
        bins = vmlib.standard_binaries(args.workloads_dir, ptescope=args.ptescope)
        os.makedirs(args.work, exist_ok=True)
        initramfs = vmlib.build_initramfs(os.path.join(args.work, "initramfs.cpio"), kernel, bins)
    except vmlib.VmUnavailable as e:
        print(f"SKIP: {e}")
        return vmlib.SKIP
    recs = plan(shutil.which("redis-server") is not None, args.storm)
    share = os.path.join(args.work, "share")
    shutil.rmtree(share, ignore_errors=True)
    try:
        status, vm_s = vmlib.boot(kernel, initramfs, share,
                                  guest_script(recs, extra=GUEST_REPLAY if args.ptescope else ""),
                                  timeout_s=args.timeout, progress=True)
    except vmlib.VmFailed as e:
        print(f"FAIL: {e}")
        return 1
    print(f"VM part: {vm_s:.1f} s (boot, recordings, guest replay); setup "
          f"{time.monotonic() - t0 - vm_s:.1f} s; kernel {kernel.release} ({kernel.version})")
    out = os.path.join(share, "out")
    if status != 0:
        print(f"FAIL: guest scenario exited {status}\n" + vmlib.guest_report(share))
        return 1
    problems = []
    kinfo = kernel.describe()
    for rec in recs:
        try:
            entry = analyse(rec, out, kinfo)
        except (RuntimeError, OSError) as e:
            problems.append(f"{rec.name}: {e}")
            continue
        # What the independent reader saw decides whether breaks are expected (see above).
        for run in entry["runs"]:
            seen = sum(n["lock_breaks"] for n in run["naive"])
            if run["breaks_forced"] and not seen:
                print(f"note: {rec.name} {run['args']}: the hog forced no lock break this time")
            run["breaks_forced"] = seen > 0
        rec_problems = [p for p in check_recording(rec, entry) if "lock break" not in p]
        problems += [f"{rec.name} (trace-cmd report): {p}" for p in rec_problems]
        nforks = sum(len(r["forks"]) for r in entry["runs"])
        print(f"{rec.filename}: {os.path.getsize(os.path.join(out, rec.filename))} bytes, "
              f"{nforks} workload forks, lost events: {entry['lost_events']}")
        if not args.ptescope:
            continue
        base = os.path.join(out, rec.name)
        with open(base + ".guest.rc") as f:
            rc = f.read().strip()
        if rc != "0":
            with open(base + ".guest.err") as f:
                problems.append(f"{rec.name}: ptescope replay in the guest exited {rc}: "
                                f"{f.read().strip()[:500]}")
            continue
        with open(base + ".guest.json") as f:
            guest = json.load(f)
        problems += [f"guest replay: {p}" for p in check_fixtures.check_report(entry, guest)]
        host, err = check_fixtures.replay(args.ptescope, os.path.join(out, rec.filename))
        if host is None:
            problems.append(f"{rec.name}: ptescope replay on the host failed: {err}")
        elif host.get("forks") != guest.get("forks"):
            problems.append(f"{rec.name}: guest and host replays disagree on the forks")
        print(f"{rec.name}: guest replay found {len(guest.get('forks') or [])} forks")
    if not args.ptescope:
        print("note: no ptescope target; checked the recordings only")
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        print(vmlib.guest_report(share, lines=40))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
