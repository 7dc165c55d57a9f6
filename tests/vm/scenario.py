"""Guest scenario scripts for recordings: trace-cmd trace.dat and tracefs text, with ground truth.

Fed by the recording plans of tests/vm/record-fixtures and tests/vm/vm_test.py (lists of Recording
objects); feeds vmlib.boot() a busybox shell script that makes every recording in one boot and
leaves, per recording, in /host/out: the trace (NAME.dat or NAME.txt), the exact command
(NAME.cmd), the recorder's log (NAME.log), the tracefs stats for text (NAME.stats), and per
workload run its ground-truth lines (NAME.runN.gt). Sized for a handful of recordings per boot.
"""

import shlex

FORK_PATH = ["kernel_clone", "copy_process", "dup_mmap", "copy_page_range"]
# The lock level's children: whichever of these the guest's kernel can trace (the guest picks them
# from available_filter_functions: rt kernels lock with rt_spin_lock, 7.2 has no
# add_swap_count_continuation, bookworm-rt cannot trace _raw_spin_unlock).
LOCK_CHILDREN = ["_raw_spin_lock", "_raw_spin_unlock", "rt_spin_lock", "rt_spin_unlock",
                 "__cond_resched", "__pte_alloc", "add_swap_count_continuation"]
DETAILS = {
    # detail level -> functions for set_ftrace_filter (-l); None: the whole graph under the root
    "fork-path": FORK_PATH,
    "locks": FORK_PATH + LOCK_CHILDREN,
    "full": None,
}
REDIS_SOCK = "/tmp/redis.sock"


class Run:
    """One workload run inside a recording.

    argv: the workload command (forker/forkstorm with arguments) or ["redis-bgsave"].
    hog_cpu: start tests/vm/workloads/hog.c pinned to this CPU for the run (forced lock breaks).
    """

    def __init__(self, argv, hog_cpu=None, note=""):
        self.argv = list(argv)
        self.hog_cpu = hog_cpu
        self.note = note

    @property
    def breaks_forced(self):
        return self.hog_cpu is not None

    def describe(self):
        return {"workload": self.argv[0], "args": self.argv[1:], "hog_cpu": self.hog_cpu,
                "breaks_forced": self.breaks_forced, "note": self.note}


class Recording:
    """One trace file: fmt "dat" (trace-cmd record) or "text" (tracefs `trace` file)."""

    def __init__(self, name, fmt, detail, runs, buffer_kb=None, note="", switches=False):
        """switches: also record sched:sched_switch (who was preempted while copying)."""
        assert fmt in ("dat", "text") and detail in DETAILS
        self.name, self.fmt, self.detail, self.runs = name, fmt, detail, runs
        self.buffer_kb = buffer_kb
        self.note = note
        self.switches = switches

    @property
    def filename(self):
        return self.name + (".dat" if self.fmt == "dat" else ".txt")

    def trace_cmd_argv(self, out_path, script_path):
        """The command, with $(lflags ...) for the guest to expand to the -l options of the
        functions its kernel can trace."""
        argv = ["trace-cmd", "record", "-p", "function_graph", "-g", "kernel_clone"]
        if DETAILS[self.detail]:
            argv.append("$(lflags " + " ".join(DETAILS[self.detail]) + ")")
        argv += ["-e", "sched:sched_process_fork"]
        if self.switches:
            argv += ["-e", "sched:sched_switch"]
        if self.buffer_kb:
            argv += ["-b", str(self.buffer_kb)]
        argv += ["-o", out_path, "--", "sh", script_path]
        return argv


def _run_lines(rec, i, run):
    # Written in the guest's /tmp and copied to the share afterwards: on 6.12 guest processes
    # writing straight into the 9p share were seen to die.
    gt = f"/tmp/out/{rec.name}.run{i}.gt"
    lines = []
    if run.hog_cpu is not None:
        lines.append(f"hog --cpu {run.hog_cpu} --seconds 300 >>{gt} & HOG=$!")
        lines.append("sleep 0.2")
    if run.argv[0] == "redis-bgsave":
        lines.append(f"redis_bgsave >>{gt}")
    else:
        lines.append(" ".join(shlex.quote(a) for a in run.argv) + f" >>{gt}")
    if run.hog_cpu is not None:
        lines.append("kill $HOG; wait $HOG 2>/dev/null")
    return lines


GUEST_PRELUDE = r"""
set -u
mkdir -p /host/out /host/runs /tmp/out
T=/sys/kernel/tracing
lflags() { # functions... -> "-l F" for each one this kernel can trace
	for f in "$@"; do grep -qx "$f" $T/available_filter_functions && printf -- '-l %s ' "$f"; done
}
tracable() { # functions... -> those this kernel can trace
	for f in "$@"; do grep -qx "$f" $T/available_filter_functions && printf '%s ' "$f"; done
}
redis_start() {
	command -v redis-server >/dev/null || return 1
	redis-server --port 0 --unixsocket @SOCK@ --save '' --appendonly no \
		--enable-debug-command yes --dir /tmp --logfile /tmp/redis.log --daemonize yes || return 1
	for i in $(seq 50); do [ -S @SOCK@ ] && break; sleep 0.1; done
	redis-cli -s @SOCK@ DEBUG POPULATE 100000 key 64 >/dev/null
}
rinfo() {
	redis-cli -s @SOCK@ info "$1" | tr -d '\r' | sed -n "s/^$2://p"
}
redis_bgsave() {
	pid=$(rinfo server process_id)
	rss=$(rinfo memory used_memory_rss)
	echo "GT {\"type\":\"start\",\"workload\":\"redis-server\",\"pid\":$pid,\"comm\":\"redis-server\",\"rss_bytes\":$rss}"
	redis-cli -s @SOCK@ bgsave >/dev/null
	for i in $(seq 300); do [ "$(rinfo persistence rdb_bgsave_in_progress)" = 0 ] && break; sleep 0.1; done
	child=$(grep -o 'Background saving started by pid [0-9]*' /tmp/redis.log | tail -1 | sed 's/.* //')
	usec=$(rinfo stats latest_fork_usec)
	echo "GT {\"type\":\"fork\",\"kind\":\"fork\",\"seq\":0,\"parent_pid\":$pid,\"child_pid\":$child,\"latest_fork_usec\":$usec,\"rss_bytes\":$rss}"
	echo "GT {\"type\":\"end\",\"pid\":$pid}"
}
text_setup() { # detail-functions...
	echo 0 > $T/tracing_on
	echo nop > $T/current_tracer
	echo > $T/set_ftrace_filter
	echo kernel_clone > $T/set_graph_function
	for f in "$@"; do echo $f >> $T/set_ftrace_filter || { echo "cannot filter $f"; return 1; }; done
	echo $TEXT_BUF_KB > $T/buffer_size_kb
	echo function_graph > $T/current_tracer
	echo 1 > $T/options/funcgraph-proc
	echo 1 > $T/options/funcgraph-abstime
	echo 1 > $T/events/sched/sched_process_fork/enable
	echo > $T/trace
	echo 1 > $T/tracing_on
}
text_finish() { # name
	echo 0 > $T/tracing_on
	cat $T/trace > /tmp/out/$1.txt
	for c in $T/per_cpu/cpu*; do echo "== ${c##*/}"; cat $c/stats; done > /tmp/out/$1.stats
	echo 0 > $T/events/sched/sched_process_fork/enable
	echo nop > $T/current_tracer
	echo > $T/set_ftrace_filter
	echo > $T/set_graph_function
	echo 1408 > $T/buffer_size_kb
}
uname -r > /host/out/uname
""".replace("@SOCK@", REDIS_SOCK)


def guest_script(recordings, text_buf_kb=32768, extra=""):
    """The whole guest scenario (shell text) making `recordings` in order, then running `extra`."""
    out = [GUEST_PRELUDE, f"TEXT_BUF_KB={text_buf_kb}"]
    uses_redis = [i for i, rec in enumerate(recordings)
                  if any(r.argv[0] == "redis-bgsave" for r in rec.runs)]
    if uses_redis:
        out.append("redis_start && echo yes > /host/out/redis || echo no > /host/out/redis")
    # Helpers the per-recording scripts source (they run under trace-cmd, in a fresh shell).
    out.append("cat > /host/runs/lib.sh <<'PTESCOPE_EOF'")
    for fn in ("rinfo", "redis_bgsave"):
        out.append(fn + "() {\n" + _function_body(fn) + "}")
    out.append("PTESCOPE_EOF")
    for idx, rec in enumerate(recordings):
        body = []
        for i, run in enumerate(rec.runs):
            body += _run_lines(rec, i, run)
        script = f"/host/runs/{rec.name}.sh"
        out.append(f"# --- {rec.name}")
        out.append(f"cat > {script} <<'PTESCOPE_EOF'")
        out.append(". /host/runs/lib.sh")
        out.extend(body)
        out.append("PTESCOPE_EOF")
        if rec.fmt == "dat":
            argv = rec.trace_cmd_argv(f"/tmp/{rec.name}.dat", script)
            cmd = " ".join(a if a.startswith("$(") else shlex.quote(a) for a in argv)
            out.append(f"echo {cmd} > /tmp/out/{rec.name}.cmd")
            out.append(f"{cmd} > /tmp/out/{rec.name}.log 2>&1"
                       f" || echo \"trace-cmd failed for {rec.name}\"")
            out.append(f"cp /tmp/{rec.name}.dat /host/out/ && rm -f /tmp/{rec.name}.dat")
        else:
            funcs = DETAILS[rec.detail] or []
            sel = f"$(tracable {' '.join(funcs)})" if funcs else ""
            desc = ("tracefs: current_tracer=function_graph set_graph_function=kernel_clone "
                    f"set_ftrace_filter={sel or '(all)'} "
                    "options/funcgraph-proc=1 options/funcgraph-abstime=1 "
                    f"events/sched/sched_process_fork/enable=1 buffer_size_kb={text_buf_kb}; "
                    f"sh {script}; cat trace")
            out.append(f"echo \"{desc}\" > /tmp/out/{rec.name}.cmd")
            out.append(f"text_setup {sel}")
            out.append(f"sh {script} > /tmp/out/{rec.name}.log 2>&1")
            out.append(f"text_finish {rec.name}")
        out.append("cp /tmp/out/* /host/out/")
        if uses_redis and idx == uses_redis[-1]:
            # An idle redis-server left running was seen stuck in the kernel (soft lockup) while
            # later recordings switched the tracer: stop it as soon as nothing needs it.
            out.append(f"redis-cli -s {REDIS_SOCK} shutdown nosave >/dev/null 2>&1")
    out.append(extra)
    return "\n".join(out) + "\n"


def _function_body(name):
    start = GUEST_PRELUDE.index(name + "() {\n") + len(name) + 5
    end = GUEST_PRELUDE.index("\n}\n", start)
    return GUEST_PRELUDE[start:end] + "\n"
