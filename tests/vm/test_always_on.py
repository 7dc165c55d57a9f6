#!/usr/bin/env python3
"""ptescoped always on, on a real kernel (the tests/vm harness): safe start and stop, the new
preemption fields against a forced workload, and a bounded investigation end to end.

Fed by the vm harness (vmlib: a kernel chosen by --kernel, initramfs, boot), the workloads of
tests/vm/workloads and the ptescoped binary under test; leaves the guest's logs, tracefs snapshots
and databases in --work. One boot (2 vCPUs) checks:
  - every kind of clone (cloner: fork, pthread_create, posix_spawn, vfork) stored with its
    kind and clone flags at every level and both hooks (task_newtask), forks with the copy's
    phases, threads and spawns without;
  - start/stop cycles across every detail level (fork by function_graph, section, pte, fork by
    kprobes with preemptions from sched_switch (no BTF), fork by kprobes, rotating; the later steps start and stop the default, fork by kprobes, and are
    checked the same way): the daemon exits 0 and tracefs reads back as before each time
    (kprobe_events and record-cmd too); the kernel log shows no soft lockup, oops, BUG or
    RCU stall (the old stop cleared set_ftrace_filter while function_graph was still the tracer:
    a soft lockup on 6.1, an oops on 6.12);
  - the default capture (detail fork) gives copy_resched/copy_offcpu_ns: more preemptions when a
    CPU hog shares the forking task's CPU than when nothing but the kernel's own threads competes;
    off-CPU time within the fork's time, null never; passes and lock breaks from the pass probes
    (never null); and both agree with sched_switch recorded beside it in an instance of our own
    (ground truth): the preemptions inside the page-table copy (first VMA's start to last
    VMA's end) <= copy_resched <= those inside the whole fork, the same for the time off CPU
    (within 1 ms);
  - an investigation started over HTTP (section detail, bounded): forks recorded during it carry
    passes and lock breaks, it ends by itself, and the capture is back to the default (kprobes
    on the fork path, no tracer);
  - a second daemon on the running one's instance is refused (the host-wide lock), and
    tracing_on 0 written in that instance by another tool is noticed and set up again, forks
    recorded after it;
  - a SIGKILLed run in another instance whose state file was lost: its kprobe events (its own
    group) stay, a default run beside them hooks by kprobes undisturbed, the instance's next run
    removes its leftover instance and events and sets up again, and none of our kprobe events
    is left after it stops.
Exit 77 (skip) when the VM cannot be had. --cycles sets the number of start/stop cycles.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmlib  # noqa: E402

# A sched_switch line of a trace text: time, prev_pid, prev_state, next_pid.
SWITCH_LINE = re.compile(r"\s(\d+\.\d+): sched_switch: .*? prev_pid=(\d+) .*?prev_state=(\S+) "
                         r"==> .*? next_pid=(\d+)")

PRELUDE = vmlib.GUEST_PRELUDE + r"""
snap() {
	for f in current_tracer tracing_on trace_clock buffer_size_kb set_event set_ftrace_filter \
		set_graph_function set_ftrace_pid options/funcgraph-irqs options/record-cmd \
		events/sched/sched_switch/enable events/sched/sched_switch/filter \
		events/sched/sched_process_fork/enable events/task/task_newtask/enable kprobe_events; do
		printf '%s: ' $f
		if [ $f = buffer_size_kb ]; then
			sed 's/.*(expanded: \([0-9]*\))/\1/' $T/$f | awk '{print int(($1 + 8) / 16) * 16}'
		else
			cat $T/$f 2>/dev/null | tr '\n' ' '; echo
		fi
	done
	ls $T/instances
	ls $T/events | grep ptescope
}
# the state file in a directory only root writes (a world-writable one such as /tmp is refused)
mkdir -p -m 700 /var/lib/ptescope
D="ptescoped --capture graph --state-file /var/lib/ptescope/tracefs-state --poll-ms 100"
start() { # name args...
	local n=$1 k
	shift
	${PIN:-} $D --db /tmp/$n.db "$@" 2>$O/$n.log &
	PID=$!
	# setting function_graph alone took 85-125 s of a loaded host's TCG guest
	for k in $(seq 3000); do
		grep -q 'ready:' $O/$n.log && return 0
		kill -0 $PID 2>/dev/null || { echo "daemon $n died"; return 1; }
		sleep 0.1
	done
	echo "step $n: daemon not ready in 300 s"
	# not left running: it would own tracefs for every later step
	kill -KILL $PID 2>/dev/null; wait $PID 2>/dev/null
	return 1
}
stop() { # name
	local k
	kill -TERM $PID
	for k in $(seq 3000); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
	if kill -0 $PID 2>/dev/null; then
		echo "step $1: daemon did not stop in 300 s"
		kill -KILL $PID 2>/dev/null
	fi
	wait $PID; echo $? > $O/$1.exit
	cp /tmp/$1.db $O/ 2>/dev/null
}
step() { # name command...: a bounded workload step
	local n=$1
	shift
	timeout 300 "$@" || echo "step $n: exit $?"
}
"""

SCENARIO = PRELUDE + r"""
echo "$(uname -r)" > $O/uname
# the kernel log from here on is ours to check (a loaded host can stall the boot itself)
dmesg -c > $O/dmesg-boot
snap > $O/before
c=0
for lvl in $LEVELS; do
	c=$((c + 1))
	# fork-graph: fork detail hooked by function_graph instead of kprobes
	# fork-switch: fork detail by kprobes with no BTF to read the task's counters from
	# (preemptions from sched_switch armed per fork by function probes)
	case $lvl in
	fork-graph) a="--detail fork --fork-hooks graph" ;;
	fork-switch) a="--detail fork --kernel-btf /nonexistent/vmlinux" ;;
	*) a="--detail $lvl" ;;
	esac
	if start cycle$c --listen 127.0.0.1:0 $a; then
		step cycle$c forker --mib 4 --forks 1 --thp off > /dev/null
		# a clone of every kind: fork, pthread_create, posix_spawn, vfork
		step cycle$c cloner --n 2 --touch-mib 4 > $O/cycle$c.clones
		sleep 0.5
		stop cycle$c
	fi
	snap > $O/after-cycle$c
done
# the default capture: preemptions while copying, with and without a competing task
PIN="taskset -c 0"
if start fields --listen 127.0.0.1:0; then
	# ground truth: the forker's context switches, recorded by sched_switch in an instance
	# of our own (the daemon's default reads the task's counters instead)
	G=$T/instances/ptescope-gt
	mkdir $G && echo mono > $G/trace_clock && echo 4096 > $G/buffer_size_kb
	echo 'prev_comm == "forker" || next_comm == "forker"' > $G/events/sched/sched_switch/filter
	echo 1 > $G/events/sched/sched_switch/enable
	# 2 s between the forks: on PREEMPT_RT the first child's deferred teardown (RCU
	# callbacks, run by kernel threads that preempt normal tasks) was seen preempting the
	# second fork 20 ms later (trixie-rt, docs/kernels.md): that is competition too
	step nobreak forker --mib 64 --forks 2 --thp off --cpu 1 --gap-ms 2000 > $O/nobreak.gt
	hog --cpu 1 --seconds 300 > /dev/null & H=$!
	sleep 0.3
	step break forker --mib 256 --forks 3 --thp off --cpu 1 > $O/break.gt
	kill $H; wait $H 2>/dev/null
	echo 0 > $G/tracing_on; cp $G/trace $O/fields-switch.txt; rmdir $G
	sleep 1; stop fields
fi
snap > $O/after-fields
# an investigation over HTTP, bounded, back to the default by itself
(umask 077; echo always-on-test-token-0123456789 > /tmp/token)
if start inv --listen 127.0.0.1:19466 --token-file /tmp/token; then
	wget -q -O $O/inv-post.json --header 'Authorization: Bearer always-on-test-token-0123456789' \
		--post-data '{"detail": "section", "duration_s": 25}' \
		http://127.0.0.1:19466/api/v1/investigations || echo "step inv: POST failed"
	sleep 1
	cat $T/set_ftrace_filter | tr '\n' ' ' > $O/inv-filter-during
	wget -q -O $O/inv-status-during.json http://127.0.0.1:19466/api/v1/status
	hog --cpu 1 --seconds 300 > /dev/null & H=$!
	sleep 0.3
	step inv-fork forker --mib 256 --forks 2 --thp off --cpu 1 > $O/inv.gt
	kill $H; wait $H 2>/dev/null
	for k in $(seq 60); do
		wget -q -O $O/inv-status-after.json http://127.0.0.1:19466/api/v1/status
		grep -q '"investigation": *{"active": *false' $O/inv-status-after.json && break
		grep -q '"active":false' $O/inv-status-after.json && break
		sleep 1
	done
	# the default capture comes back: wait for its setup (tracing_on is its last write). Like
	# every start here, 300 s: a loaded host's TCG guest took over 120 s for this restart.
	# The default hooks the fork path with kprobes, no tracer
	back=no
	for k in $(seq 300); do
		grep -q nop $T/current_tracer && grep -q ptescope/copy_page_range $T/kprobe_events \
			&& grep -q 1 $T/instances/ptescoped/events/ptescope/enable 2>/dev/null \
			&& ! grep -q -e _raw_spin_lock -e rt_spin_lock $T/set_ftrace_filter \
			&& grep -q 1 $T/instances/ptescoped/tracing_on \
			&& { back=yes; break; }
		sleep 1
	done
	[ $back = yes ] || echo "step inv: the default capture was not back 300 s after the investigation" \
		| tee $O/inv-not-back
	sleep 1
	wget -q -O $O/inv-status-back.json http://127.0.0.1:19466/api/v1/status
	cat $T/set_ftrace_filter | tr '\n' ' ' > $O/inv-filter-after
	step inv-after forker --mib 16 --forks 1 --thp off > $O/inv-after.gt
	sleep 1; stop inv
fi
snap > $O/after-inv
# a second daemon on the same instance is refused while the first runs (the host-wide lock)
# and the first goes on; tracing_on 0 written in its instance by another tool is seen within
# the setup check's 10 s and set up again, and forks are recorded after it
if start owner --listen 127.0.0.1:0; then
	timeout 300 $D --db /tmp/second.db --state-file /var/lib/ptescope/tracefs-state2 --listen 127.0.0.1:0 \
		2> $O/second.log
	echo $? > $O/second.exit
	echo 0 > $T/instances/ptescoped/tracing_on
	# (a new instance reads tracing_on 1 from its creation: the second setup's own line
	# says it is done)
	for k in $(seq 300); do
		grep -q 'changed by another tool' $O/owner.log \
			&& [ $(grep -c 'capture graph in instances' $O/owner.log) -ge 2 ] && break
		sleep 1
	done
	step owner-fork forker --mib 4 --forks 1 --thp off > $O/owner.gt
	sleep 2; stop owner
fi
snap > $O/after-owner
# SIGKILL with the state file lost, the run in another instance: its kprobe events (its own
# group) stay; a default run beside them is not disturbed; the next run of that instance
# removes the leftover instance and events (its lock says their run is dead), sets up, and
# nothing of ours is left after it stops
if start orphan --listen 127.0.0.1:0 --instance ptescope-other; then
	kill -KILL $PID; wait $PID 2>/dev/null
	rm -f /var/lib/ptescope/tracefs-state
	cp $T/kprobe_events $O/orphan-left
	if start beside --listen 127.0.0.1:0; then
		step beside-fork forker --mib 4 --forks 1 --thp off > /dev/null
		stop beside
	fi
	if start orphan3 --listen 127.0.0.1:0 --instance ptescope-other; then
		step orphan-fork forker --mib 4 --forks 1 --thp off > /dev/null
		stop orphan3
	fi
fi
snap > $O/after-orphan
dmesg > $O/dmesg
"""

BAD_KERNEL_LOG = ("soft lockup", "Oops", "BUG:", "RCU stall", "rcu_sched self-detected",
                  "rcu_preempt self-detected", "general protection fault", "Kernel panic")


def read(out, name):
    p = os.path.join(out, name)
    return open(p, errors="replace").read() if os.path.exists(p) else None


def gt_forks(out, name):
    p = os.path.join(out, name)
    return [g for g in vmlib.read_ground_truth(p) if g.get("type") == "fork"] \
        if os.path.exists(p) else []


def db_forks(out, name):
    p = os.path.join(out, name + ".db")
    if not os.path.exists(p):
        return {}
    con = sqlite3.connect(p)
    con.row_factory = sqlite3.Row
    rows = {r["child_pid"]: dict(r) for r in con.execute("select * from fork")}
    con.close()
    return rows


def check_cycles(out, levels, bad):
    before = read(out, "before")
    for i, lvl in enumerate(levels, 1):
        if (read(out, f"cycle{i}.exit") or "").strip() != "0":
            bad(f"cycle {i} ({lvl}): exit {read(out, f'cycle{i}.exit')!r}; log:\n"
                f"{read(out, f'cycle{i}.log')}")
        # where the preemptions come from: the task's counters by default, sched_switch
        # where the kernel's BTF cannot be read
        want = {"fork": "preemptions: task_counters",
                "fork-switch": "preemptions: sched_switch"}.get(lvl)
        if want and want not in (read(out, f"cycle{i}.log") or ""):
            bad(f"cycle {i} ({lvl}): the log does not say '{want}':\n"
                f"{read(out, f'cycle{i}.log')}")
        if read(out, f"after-cycle{i}") != before:
            bad(f"cycle {i} ({lvl}): tracefs differs from before:\n{before}---\n"
                f"{read(out, f'after-cycle{i}')}")
    for snap in ("after-fields", "after-inv"):
        if read(out, snap) != before:
            bad(f"tracefs {snap} differs from before:\n{before}---\n{read(out, snap)}")
    log = read(out, "dmesg") or ""
    hits = [line for line in log.splitlines() if any(b in line for b in BAD_KERNEL_LOG)]
    if hits:
        bad("kernel log:\n" + "\n".join(hits[:20]))
    print(f"cycles: {len(levels)} start/stop cycles ({' '.join(levels)}), kernel log "
          f"{'clean' if not hits else 'NOT clean'}")


def switches(out, name):
    """(time ns, prev_pid, preempted, next_pid) of each sched_switch line in a trace text."""
    got = []
    for line in (read(out, name) or "").splitlines():
        m = SWITCH_LINE.search(line)
        if m:
            got.append((round(float(m.group(1)) * 1e9), int(m.group(2)),
                        m.group(3).startswith("R+"), int(m.group(4))))
    return got


def preempted_in(sw, pid, lo, hi):
    """Preemptions of @pid that began in [lo, hi] ns (2 us slack: the text's microseconds), and
    their time off the CPU (to @pid's next switch-in)."""
    n, off, out_at = 0, 0, None
    for ts, prev, preempted, nxt in sw:
        if nxt == pid and out_at is not None:
            off += ts - out_at
            out_at = None
        if prev == pid and preempted and lo - 2000 <= ts <= hi + 2000:
            n += 1
            out_at = ts
    return n, off


def vma_span(out, name):
    """{child_pid: (first VMA copy's start, last one's end)} from a run's database."""
    p = os.path.join(out, name + ".db")
    if not os.path.exists(p):
        return {}
    con = sqlite3.connect(p)
    rows = con.execute("select f.child_pid, v.data from fork f join fork_vma v "
                       "on v.fork_id = f.id").fetchall()
    con.close()
    out = {}
    for child, data in rows:  # packed: store/store_packed.c (i64 start_ns, i64 dur_ns, ...)
        copies = [(s, s + d) for s, d, *_ in struct.iter_unpack("<qqiiII", data)
                  if s >= 0 and d >= 0]
        if copies:
            out[child] = (min(c[0] for c in copies), max(c[1] for c in copies))
    return out


def check_ground_truth(out, f, span, sw, bad):
    """copy_resched/copy_offcpu_ns (read from the task's counters between dup_mmap, or the
    first copy_page_range where dup_mmap is inlined, and wake_up_new_task) against the
    recorded sched_switch."""
    pid, child = f["parent_pid"], f["child_pid"]
    if not sw:
        bad("fields: no sched_switch ground truth recorded")
        return
    if span is None or f["ts_ns"] is None or f["kernel_clone_ns"] is None:
        bad(f"fields: fork -> {child}: no VMA span or fork time to compare with")
        return
    n_in, off_in = preempted_in(sw, pid, span[0], span[1])
    n_all, off_all = preempted_in(sw, pid, f["ts_ns"], f["ts_ns"] + f["kernel_clone_ns"])
    print(f"  ground truth -> {child}: {n_in} preemptions ({off_in} ns) while copying, "
          f"{n_all} ({off_all} ns) in the fork")
    if not n_in <= f["copy_resched"] <= n_all:
        bad(f"fields: fork -> {child}: copy_resched {f['copy_resched']} outside the recorded "
            f"{n_in}..{n_all}")
    if not off_in - 1000000 <= f["copy_offcpu_ns"] <= off_all + 1000000:
        bad(f"fields: fork -> {child}: copy_offcpu_ns {f['copy_offcpu_ns']} outside the "
            f"recorded {off_in}..{off_all} ns (1 ms slack)")


def check_parent_mem(run, g, f, bad):
    """The parent's memory as the fork began (the probe at dup_mmap or uprobe_dup_mmap, else
    /proc): its anonymous RSS against what the forker read from its own smaps just before the
    fork (per-CPU counters, 6.2 on, may lag by a batch: 1 MiB of slack), and a VMA count and page
    tables that are there."""
    anon, maps, pte = f["mem_rss_anon_bytes"], f["mem_map_count"], f["mem_pte_bytes"]
    print(f"{run}: fork -> {g['child_pid']}: parent rss_anon {anon} (the forker's smaps "
          f"{g['rss_anon_kb'] * 1024}), map_count {maps}, pte_bytes {pte}")
    if anon is None or maps is None or pte is None:
        bad(f"{run}: fork -> {g['child_pid']}: the parent's memory missing")
        return
    want = g["rss_anon_kb"] * 1024
    if abs(anon - want) > max(want // 100, 1 << 20):
        bad(f"{run}: fork -> {g['child_pid']}: parent rss_anon {anon}, the forker read {want}")
    if maps < 5 or pte < 4096:
        bad(f"{run}: fork -> {g['child_pid']}: {maps} VMAs, {pte} bytes of page tables")


def check_fields(out, bad):
    got = db_forks(out, "fields")
    spans = vma_span(out, "fields")
    sw = switches(out, "fields-switch.txt")
    # A fork alone on its CPU is not always alone: kernel threads (kworkers; on PREEMPT_RT also
    # interrupt, timer and softirq threads) can preempt it, and did (6.12 in a loaded TCG guest,
    # trixie-rt, bookworm-rt: 1-6 preemptions in two forks, docs/kernels.md). What holds in every
    # run: the CPU hog gives more preemptions than none.
    totals = {}
    for run, forced in (("nobreak", False), ("break", True)):
        total = 0
        for g in gt_forks(out, run + ".gt"):
            f = got.get(g["child_pid"])
            if not f:
                bad(f"{run}: fork -> {g['child_pid']} not stored")
                continue
            rs, off, cpr = f["copy_resched"], f["copy_offcpu_ns"], f["copy_page_range_ns"]
            print(f"{run}: fork -> {g['child_pid']}: copy_resched {rs}, copy_offcpu "
                  f"{off} ns, copy_page_range {cpr} ns, lock_breaks {f['lock_breaks']}")
            if rs is None or off is None:
                bad(f"{run}: fork -> {g['child_pid']}: copy_resched/copy_offcpu_ns null")
                continue
            total += rs
            if (rs > 0) != (off > 0):
                bad(f"{run}: fork -> {g['child_pid']}: {rs} preemptions but {off} ns off CPU")
            if f["kernel_clone_ns"] is not None and off > f["kernel_clone_ns"]:
                bad(f"{run}: fork -> {g['child_pid']}: off CPU {off} ns > the fork's "
                    f"{f['kernel_clone_ns']} ns")
            check_ground_truth(out, f, spans.get(g["child_pid"]), sw, bad)
            check_parent_mem(run, g, f, bad)
            # the default's pass probes inside copy_page_range (tests/vm/test_passes.py checks
            # them against function_graph)
            if f["lock_breaks"] is None or not f["pte_passes"]:
                bad(f"{run}: fork -> {g['child_pid']}: passes {f['pte_passes']}, lock_breaks "
                    f"{f['lock_breaks']} at the default detail (the pass probes)")
        if forced and not total:
            bad(f"{run}: no preemption recorded although a CPU hog shared the CPU")
        totals[run] = total
    if totals.get("break", 0) <= totals.get("nobreak", 0):
        bad(f"preemptions with a CPU hog ({totals.get('break')}) not above those without "
            f"({totals.get('nobreak')})")


def check_owner(out, bad):
    """A second daemon on the instance refused; the setup taken apart is set up again."""
    second = read(out, "second.log") or ""
    if (read(out, "second.exit") or "").strip() in ("0", "") or "in use by pid" not in second:
        bad(f"owner: a second daemon on the same instance was not refused:\n{second}")
    log = read(out, "owner.log") or ""
    if "changed by another tool" not in log:
        bad(f"owner: tracing_on 0 in its instance was not noticed:\n{log[-2000:]}")
    gt = [g for g in vmlib.read_ground_truth(os.path.join(out, "owner.gt"))
          if g.get("type") == "fork"]
    db = os.path.join(out, "owner.db")
    got = 0
    if gt and os.path.exists(db):
        con = sqlite3.connect(db)
        got = sum(1 for g in gt if con.execute("select count(*) from fork where child_pid = ?",
                                               (g["child_pid"],)).fetchone()[0])
    if not gt or got != len(gt):
        bad(f"owner: {got} of {len(gt)} forks recorded after the setup was set up again")
    if (read(out, "owner.exit") or "").strip() != "0":
        bad(f"owner: exit {read(out, 'owner.exit')!r}")


def check_kinds(out, levels, bad):
    """Each cycle's clones of every kind: stored with the kind the workload made, their
    flags, and the copy's phases only where an address space was copied."""
    for i, lvl in enumerate(levels, 1):
        clones = [g for g in vmlib.read_ground_truth(os.path.join(out, f"cycle{i}.clones"))
                  if g.get("type") == "clone"] if read(out, f"cycle{i}.clones") else []
        got = db_forks(out, f"cycle{i}")
        if len(clones) != 8:
            bad(f"cycle {i} ({lvl}): cloner made {len(clones)} clones, not 8")
        seen = {}
        for g in clones:
            f = got.get(g["child_pid"])
            if not f or f["parent_pid"] != g["parent_tid"]:
                bad(f"cycle {i} ({lvl}): {g['kind']} -> {g['child_pid']} not stored ({f})")
                continue
            copied = f["copy_page_range_ns"] is not None and f["copy_page_range_ns"] > 0
            if f["kind"] != g["kind"] or f["clone_flags"] is None or \
                    copied != (g["kind"] == "fork"):
                bad(f"cycle {i} ({lvl}): {g['kind']} -> {g['child_pid']} stored as kind "
                    f"{f['kind']}, flags {f['clone_flags']}, copy_page_range_ns "
                    f"{f['copy_page_range_ns']}")
                continue
            seen[g["kind"]] = seen.get(g["kind"], 0) + 1
        print(f"cycle {i} ({lvl}): kinds {seen}, flags "
              f"{sorted(set(hex(f['clone_flags']) for f in got.values() if f['clone_flags']))}")


def check_orphan(out, bad):
    """A SIGKILLed run in another instance whose state file was lost: its group's events do not
    disturb the default beside them; its instance's next run removes them."""
    left = read(out, "orphan-left") or ""
    if not re.search(r"ptescope_ptescope_other_[0-9a-f]+/kernel_clone", left):
        bad(f"orphan: the killed run left no kprobe events of its own group: {left!r}")
        return
    beside = read(out, "beside.log") or ""
    if (read(out, "beside.exit") or "").strip() != "0" or "hooked by kprobes" not in beside:
        bad(f"orphan: the default run beside the leftovers did not hook by kprobes:\n{beside}")
    log = read(out, "orphan3.log") or ""
    if "removed the leftover instance" not in log or \
            "removed the leftover ptescope_ptescope_other_" not in log or \
            "hooked by kprobes" not in log:
        bad(f"orphan: the instance's next run did not remove its leftovers and hook by "
            f"kprobes:\n{log}")
    if (read(out, "orphan3.exit") or "").strip() != "0":
        bad(f"orphan: the instance's next run exit {read(out, 'orphan3.exit')!r}")
    after = read(out, "after-orphan") or ""
    if "ptescope" in after:
        bad(f"orphan: kprobe events of ours left after it stopped:\n{after}")


def check_investigation(out, bad):
    post = read(out, "inv-post.json")
    try:
        inv = json.loads(post or "")
    except json.JSONDecodeError:
        bad(f"investigation: POST answered {post!r}; log:\n{read(out, 'inv.log')}")
        return
    during = read(out, "inv-filter-during") or ""
    after = read(out, "inv-filter-after") or ""
    # the PTE lock: rt_spin_lock on rt kernels (docs/kernels.md)
    locks = ("_raw_spin_lock", "rt_spin_lock")
    if not any(lk in during for lk in locks):
        bad(f"investigation: set_ftrace_filter while it ran: {during!r}")
    # the default hooks nothing through set_ftrace_filter (kprobe events; its preemptions come
    # from the task's counters, or from sched_switch armed by function probes there)
    if any(lk in after for lk in locks):
        bad(f"investigation: set_ftrace_filter after it ended: {after!r}")
    st = read(out, "inv-status-after.json") or ""
    try:
        active = json.loads(st)["investigation"]["active"]
    except (json.JSONDecodeError, KeyError, TypeError):
        active = None
    if active is not False:
        bad(f"investigation: still active (or no status) after its 25 s: {st[:400]!r}")
    got = db_forks(out, "inv")
    passes = 0
    for g in gt_forks(out, "inv.gt"):
        f = got.get(g["child_pid"])
        if not f or f["pte_passes"] is None or f["lock_breaks"] is None:
            bad(f"investigation: fork -> {g['child_pid']} without passes: {f}")
            continue
        passes += f["pte_passes"]
        print(f"investigation: fork -> {g['child_pid']}: passes {f['pte_passes']}, lock_breaks "
              f"{f['lock_breaks']}, copy_resched {f['copy_resched']}")
    if read(out, "inv-not-back") is not None:
        bad("investigation: the default capture was not back 300 s after it ended; log:\n"
            f"{read(out, 'inv.log')}")
    # the default is back: fork detail hooked by kprobes, its passes from the pass probes
    for g in gt_forks(out, "inv-after.gt"):
        f = got.get(g["child_pid"])
        if not f or not f["pte_passes"]:
            bad(f"after the investigation: fork -> {g['child_pid']} {f} (expected the default's "
                f"passes)")
    try:
        cap = json.loads(read(out, "inv-status-back.json") or "")["capture"]
    except (json.JSONDecodeError, KeyError, TypeError):
        cap = {}
    if cap.get("detail") != "fork" or cap.get("hooks") != "kprobes":
        bad(f"after the investigation: capture {cap} (expected detail fork by kprobes)")
    print(f"investigation {inv.get('id')}: {passes} passes recorded during it, ended by itself")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--workloads-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--ptescoped", required=True)
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--timeout", type=int, default=2400)
    vmlib.add_kernel_option(ap)
    a = ap.parse_args()
    # fork by kprobes is the default the later steps (fields, investigation) start and stop
    levels = [("fork-graph", "section", "pte", "fork-switch", "fork")[i % 5]
              for i in range(a.cycles)]
    scenario = f"LEVELS='{' '.join(levels)}'\n" + SCENARIO
    try:
        kernel = vmlib.get_kernel(a.cache, a.kernel)
        bins = vmlib.standard_binaries(a.workloads_dir, need_trace_cmd=False)
        bins.append(("usr/sbin/ptescoped", a.ptescoped))
        os.makedirs(a.work, exist_ok=True)
        initrd = vmlib.build_initramfs(os.path.join(a.work, "initramfs.cpio"), kernel, bins)
        share = os.path.join(a.work, "share")
        shutil.rmtree(share, ignore_errors=True)
        os.makedirs(share)
        status, secs = vmlib.boot(kernel, initrd, share, scenario, timeout_s=a.timeout)
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
        if line.startswith("step ") or "died" in line:
            problems.append(line)
    check_cycles(out, levels, problems.append)
    check_kinds(out, levels, problems.append)
    check_fields(out, problems.append)
    check_investigation(out, problems.append)
    check_owner(out, problems.append)
    check_orphan(out, problems.append)
    for p in problems:
        print("FAIL:", p)
    if problems:
        print(vmlib.guest_report(share, lines=60))
    else:
        print("ok: always-on checks passed on", kernel.release)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
