#!/usr/bin/env bash
# Live syscall-mode capture on this machine's real kernel: ptescoped sees
# exactly the N forks forkn makes, with their child pids and a kernel_clone
# time; tracefs after the stop (SIGTERM) is as it was before the start; a
# SIGKILLed daemon's leftover instance is repaired at the next start.
# Exits 77 (skip) where tracefs is missing or not writable.
# Usage: test_syscall_live.sh PTESCOPED FORKN
set -euo pipefail
daemon=$1 forkn=$2
T=${PTESCOPE_TRACEFS:-/sys/kernel/tracing}
[ -d "$T/instances" ] || { echo "skip: no tracefs instances at $T"; exit 77; }
probe="$T/instances/ptescope-probe-$$"
if ! mkdir "$probe" 2>/dev/null; then echo "skip: tracefs not writable"; exit 77; fi
rmdir "$probe"
[ -d "$T/events/syscalls/sys_enter_clone" ] || { echo "skip: no syscall events"; exit 77; }
command -v sqlite3 >/dev/null || { echo "skip: sqlite3 missing"; exit 77; }

work=$(mktemp -d)
inst=ptescope-test-$$
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	rmdir "$T/instances/$inst" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# what tracefs looks like: top-level files we could touch, and the instance list
snap() {
	for f in current_tracer tracing_on trace_clock buffer_size_kb set_event set_ftrace_filter \
		set_graph_function; do
		printf '%s: ' "$f"; cat "$T/$f" 2>/dev/null | head -c 4096 | tr '\n' ' '; echo
	done
	ls "$T/instances" | { grep -v '^ptescope-probe' || true; } | sort
}

start() { # log
	"$daemon" --capture syscall --db "$work/db" --state-file "$work/state" --instance "$inst" \
		--listen 127.0.0.1:0 --poll-ms 50 2>"$1" &
	pid=$!
	for _ in $(seq 300); do
		grep -q 'ready:' "$1" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$1"; echo "FAIL: daemon died"; exit 1; }
		sleep 0.1
	done
	cat "$1"; echo "FAIL: daemon not ready"; exit 1
}

fail() { echo "FAIL: $*"; exit 1; }

before=$(snap)
start "$work/log1"
[ -d "$T/instances/$inst" ] || fail "instance $inst not created"
# it never preempts the work it watches: SCHED_BATCH (3), every thread
for s in /proc/$pid/task/*/sched; do
	grep -q '^policy *: *3$' "$s" || fail "$s: $(grep '^policy' "$s"), not SCHED_BATCH (3)"
done
N=25
# (LeakSanitizer, in sanitizer builds, would clone a tracer task at exit: a real fork)
# (alive 1 s after its forks, so that the daemon reads its memory from /proc)
ASAN_OPTIONS=detect_leaks=0 "$forkn" $N 1 > "$work/forks"
sleep 0.5
kill -TERM "$pid"; wait "$pid" || fail "daemon exit status $? after SIGTERM"; pid=
cat "$work/log1"
after=$(snap)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "tracefs changed"; }
[ ! -e "$work/state" ] || fail "state file left behind"

parent=$(sed -n 's/^parent //p' "$work/forks")
sed -n 's/^child //p' "$work/forks" | sort -n > "$work/want"
sqlite3 "$work/db" "select child_pid from fork where parent_pid = $parent" | sort -n > "$work/got"
diff "$work/want" "$work/got" || fail "child pids differ (want left, got right)"
[ "$(wc -l < "$work/got")" -eq $N ] || fail "expected $N forks"
bad=$(sqlite3 "$work/db" "select count(*) from fork where parent_pid = $parent and
	(kernel_clone_ns is null or kernel_clone_ns <= 0 or complete != 1 or parent_comm != 'forkn'
	 or copy_page_range_ns is not null)")
[ "$bad" -eq 0 ] || fail "$bad forks lack kernel_clone_ns/comm or are not complete"
# the parent's memory, read from /proc when the forks were seen (daemon/procmem.c)
mem=$(sqlite3 "$work/db" "select count(*) from fork where parent_pid = $parent and
	mem_rss_anon_bytes > 0 and mem_pte_bytes > 0 and mem_map_count >= 5")
[ "$mem" -eq $N ] || fail "only $mem of $N forks carry the parent's memory"
sqlite3 "$work/db" "select 'parent memory: rss anon ' || mem_rss_anon_bytes || ', file ' ||
	mem_rss_file_bytes || ', page tables ' || mem_pte_bytes || ', VMAs ' || mem_map_count ||
	', THP ' || ifnull(mem_anon_huge_bytes, 'null') from fork where parent_pid = $parent limit 1"
src=$(sqlite3 "$work/db" "select kind || ' ' || (lost_events = 0) from source")
[ "$src" = "live 1" ] || fail "source row: '$src'"
echo "ok: $N forks seen with their child pids; tracefs restored after SIGTERM"

# SIGKILL: the leftover instance and state file are repaired by the next start
start "$work/log2"
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=
[ -d "$T/instances/$inst" ] || fail "instance gone after SIGKILL?"
[ -e "$work/state" ] || fail "no state file after SIGKILL"
start "$work/log3"
grep -q 'repaired\|removed the leftover' "$work/log3" || { cat "$work/log3"; fail "no repair logged"; }
kill -INT "$pid"; wait "$pid" || fail "daemon exit status $? after SIGINT"; pid=
after=$(snap)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "tracefs changed after repair"; }
echo "ok: SIGKILL leftover repaired, tracefs restored after SIGINT"
