"""A deliberately simple reader of function_graph text, the reference the analyzer is checked against.

Fed by `trace-cmd report` output of a trace.dat or by a tracefs `trace` file written with
funcgraph-proc on; feeds tests/vm/record-fixtures, which stores what it finds next to the workloads'
own ground truth in tests/fixtures/vm/manifest.json. It rebuilds calls per pid from `{`/`}` lines
only (no CPU merging subtleties, no lost-event handling), so it is only trusted on complete
recordings. Per fork (kernel_clone call) it reports the child pid (sched_process_fork), the
copy_page_range calls, the vm_normal_page calls directly under them (present PTEs copied), the copy
passes (two _raw_spin_lock calls directly under copy_page_range, their unlocks, then the
__cond_resched that ends every pass; on kernels that never call __cond_resched there, the second
unlock ends it) and how many passes resumed a PMD after a lock break (see _cpr_child), and how
often the forking task was preempted (sched_switch, prev_state "R+") while copy_page_range was
open. A trace.dat is read with `trace-cmd report -l`, whose flags column tells interrupt context:
calls made by an interrupt handler, or with interrupts off, are not the fork's. Sized for
recordings of a few hundred thousand lines.
"""

import re
import subprocess

# trace-cmd report:  "  forker-116   [001]     5.940626: funcgraph_entry:   |  copy_page_range() {"
REPORT_RE = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<ts>[\d.]+):\s+"
                       r"(?P<event>\w+):\s+(?P<rest>.*)$")
# trace-cmd report -l: "  forker-116     1...1.     5.940626: funcgraph_entry: ..." (CPU, then the
# flags: irqs-off, need-resched, hardirq/softirq ('h', 's', 'H'), preempt depth, ...)
LAT_RE = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?P<cpu>\d+)(?P<flags>[^\d\s]\S*)\s+"
                    r"(?P<ts>[\d.]+):\s+(?P<event>\w+):\s+(?P<rest>.*)$")
# tracefs trace, funcgraph-abstime + funcgraph-proc:
# "  5.940626 |   1)  forker-116    |               |  copy_page_range() {"
TEXT_RE = re.compile(r"^\s*(?P<ts>[\d.]+)\s+\|\s+(?P<cpu>\d+)\)\s+(?P<comm>.+?)-(?P<pid>\d+)\s+\|"
                     r"(?P<rest>.*)$")
# sched_switch as tracefs prints it, and as trace-cmd's plugin does ("forker:209 [120] R+ ==> ...")
SWITCH_RE = re.compile(r"sched_switch:\s+(?:prev_comm=.*?\s+prev_pid=(\d+)\s+prev_prio=\d+\s+"
                       r"prev_state=(\S+)|.*?:(\d+) \[\d+\] (\S+) ==>)")
FORK_RE = re.compile(r"sched_process_fork:\s+comm=.*?\s+pid=(\d+)\s+child_comm=.*?\s+child_pid=(\d+)")
CALL_RE = re.compile(r"\|(?P<indent>\s*)(?P<name>[\w.]+)\(\)\s*(?P<kind>[{;])")
DURATION_RE = re.compile(r"([\d.]+) us\s+\|")
# A __cond_resched that returns within this time did not switch tasks (about 1 us under TCG with
# tracing on; a switch to a competing task takes at least a scheduler tick or slice).
SWITCH_MIN_US = 20.0
EXIT_RE = re.compile(r"\|\s*\}")


class _Task:
    def __init__(self):
        self.stack = []  # function names of open calls
        self.fork = None  # the fork being built while inside kernel_clone
        self.cpr = None  # state of the open copy_page_range call


def _new_fork(pid, comm, ts):
    return {"parent_pid": pid, "parent_comm": comm, "ts": ts, "child_pid": None,
            "copy_page_range_calls": 0, "dup_mmap_calls": 0, "ptes": 0, "passes": 0,
            "lock_breaks": 0, "preempted": 0, "resched_children": 0}


def parse_lines(lines):
    """Returns the list of forks (dicts, see _new_fork) found in function_graph text lines."""
    lines = list(lines)
    forks = _parse(lines, True)
    if not any(f["resched_children"] for f in forks):
        # this kernel (rt, lazy preemption) or filter never shows cond_resched() after a pass
        forks = _parse(lines, False)
    return forks


def _parse(lines, resched):
    tasks = {}
    forks = []
    for line in lines:
        m = REPORT_RE.match(line) or LAT_RE.match(line) or TEXT_RE.match(line)
        if not m:
            continue
        flags = m.groupdict().get("flags") or ""
        in_irq = (len(flags) > 2 and flags[2] in "hsH") or flags[:1] == "d"
        pid = int(m.group("pid"))
        t = tasks.setdefault(pid, _Task())
        rest = m.group("rest")
        sm = SWITCH_RE.search(line)
        if sm:
            prev, state = (sm.group(1), sm.group(2)) if sm.group(1) else (sm.group(3), sm.group(4))
            p = tasks.get(int(prev))
            # left runnable: preempted ("R+"; trace-cmd's plugin prints it "R")
            if p and p.fork is not None and p.cpr is not None and state.startswith("R"):
                p.fork["preempted"] += 1
            continue
        fm = FORK_RE.search(line)
        if fm:
            if t.fork is not None and int(fm.group(1)) == pid:
                t.fork["child_pid"] = int(fm.group(2))
            continue
        if "|" not in rest:
            continue
        cm = CALL_RE.search(rest)
        if cm:
            name, kind = cm.group("name"), cm.group("kind")
            if name == "kernel_clone" and t.fork is None:
                t.fork = _new_fork(pid, m.group("comm").strip(), float(m.group("ts")))
            if t.fork is not None and t.stack and t.stack[-1] == "copy_page_range" and t.cpr \
                    and not in_irq:
                dm = DURATION_RE.search(rest)
                # An entry line ("{") has children: for __cond_resched that means it scheduled.
                switched = kind == "{" or (dm is not None and float(dm.group(1)) >= SWITCH_MIN_US)
                _cpr_child(t.fork, t.cpr, name, switched, resched)
            if name == "copy_page_range" and t.fork is not None:
                t.fork["copy_page_range_calls"] += 1
                if kind == "{":
                    t.cpr = {"after_pass": False, "resumed": False, "locks": 0, "unlocks": 0,
                             "switched": False}
            if name == "dup_mmap" and t.fork is not None:
                t.fork["dup_mmap_calls"] += 1
            if kind == "{":
                t.stack.append(name)
            elif name == "kernel_clone" and t.fork is not None:
                forks.append(t.fork)  # a leaf kernel_clone (filtered traces)
                t.fork = None
            continue
        if EXIT_RE.search(rest):
            if not t.stack:
                continue
            name = t.stack.pop()
            if name == "copy_page_range":
                t.cpr = None
            if name == "kernel_clone" and t.fork is not None:
                forks.append(t.fork)
                t.fork = None
    return forks


# The map-and-lock helpers of 6.12 and 7.2 take the child's PTE lock inside: as a direct child of
# copy_page_range they are its first lock.
LOCKS = ("_raw_spin_lock", "rt_spin_lock", "__pte_offset_map_lock", "pte_offset_map_lock")
UNLOCKS = ("_raw_spin_unlock", "rt_spin_unlock")
PASS_CALLS = LOCKS + UNLOCKS + ("__cond_resched", "__pte_alloc", "add_swap_count_continuation")


def _cpr_child(fork, cpr, name, switched, resched=True):
    """One direct child of copy_page_range (copy_pte_range inlined, as on every Debian kernel),
    outside interrupts. A pass is a lock pair (dst, then src PTE lock), its unlocks, and then a
    __cond_resched: copy_pte_range calls cond_resched() after every pass (with `resched` False,
    on kernels where it is a no-op, the pass ends at its last unlock). A pass resumed the same
    PMD after a lock break when its first lock comes right after the end of the previous pass
    (the kernel's `goto again`: the PTE table is there, nothing is allocated) and, where a
    __cond_resched ended it, that __cond_resched switched tasks (docs/architecture.md, "From calls
    to forks"). Anything between the two (__pte_alloc for a new PMD, a swap count continuation, an
    allocation's own __cond_resched or unlock before copy_huge_pmd's PMD lock pair) means a new
    start, not a resumed pass. With THP, copy_huge_pmd's pairs count as passes here (never as
    resumed ones); the analyzer drops them."""
    if name == "vm_normal_page":
        fork["ptes"] += 1
    if name == "__cond_resched":
        fork["resched_children"] += 1
    if name not in PASS_CALLS:  # the rest of a full graph: PTE copy helpers, rmap, ...
        return
    after_pass = cpr["after_pass"]
    cpr["after_pass"] = False
    if name in LOCKS:
        if cpr["unlocks"]:  # a lock after unlocks: the previous pair is over, a new one starts
            cpr["locks"] = cpr["unlocks"] = 0
        if cpr["locks"] == 0:
            cpr["resumed"] = after_pass and cpr["switched"]
        cpr["locks"] += 1
    elif name in UNLOCKS:
        if cpr["locks"] and cpr["unlocks"] < cpr["locks"]:
            cpr["unlocks"] += 1
            if not resched and cpr["locks"] >= 2 and cpr["unlocks"] == cpr["locks"]:
                _pass_done(fork, cpr, True)
        else:
            cpr["locks"] = cpr["unlocks"] = 0
    elif name == "__cond_resched" and cpr["locks"] >= 2 and cpr["unlocks"] >= cpr["locks"]:
        _pass_done(fork, cpr, switched)
    else:
        cpr["locks"] = cpr["unlocks"] = 0


def _pass_done(fork, cpr, switched):
    fork["passes"] += 1
    fork["lock_breaks"] += cpr["resumed"]
    cpr["after_pass"] = True
    cpr["switched"] = switched
    cpr["locks"] = cpr["unlocks"] = 0


def parse_dat(path):
    """Forks in a trace.dat, read through `trace-cmd report` (the independent reader)."""
    out = subprocess.run(["trace-cmd", "report", "-l", "-i", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, check=True).stdout
    return parse_lines(out.splitlines())


def parse_text(path):
    with open(path, errors="replace") as f:
        return parse_lines(f)


def dat_stats(path):
    """Lost-event evidence of a trace.dat: per-CPU kernel stats saved in it and dropped markers."""
    out = subprocess.run(["trace-cmd", "report", "--stat", "-i", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    stats = {"overrun": 0, "commit_overrun": 0, "dropped_events": 0}
    for line in out.splitlines():
        for key in ("overrun", "commit overrun", "dropped events"):
            if line.startswith(key + ":"):
                stats[key.replace(" ", "_")] += int(line.split(":", 1)[1])
    rep = subprocess.run(["trace-cmd", "report", "-i", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    markers = re.findall(r"CPU:\d+ \[(?:(\d+) )?EVENTS DROPPED\]", rep)
    stats["dropped_markers"] = len(markers)
    stats["dropped_marked_events"] = sum(int(x) for x in markers if x)
    return stats


def text_stats(stats_text):
    """Sums the per-CPU tracefs stats files (as concatenated by the guest scenario)."""
    stats = {"overrun": 0, "commit_overrun": 0, "dropped_events": 0}
    for line in stats_text.splitlines():
        for key in ("overrun", "commit overrun", "dropped events"):
            if line.startswith(key + ":"):
                stats[key.replace(" ", "_")] += int(line.split(":", 1)[1])
    return stats
