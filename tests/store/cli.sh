#!/bin/bash
# SPDX-License-Identifier: MIT
# The store through the real CLI on real recordings:
#  - `ptescope report --db` prints exactly what `ptescope replay --db` printed
#    (text and JSON), and what a replay without --db prints;
#  - replaying the same files again stores nothing;
#  - kill -9 of `replay --db` at random points: integrity_check passes, and
#    the same command run again completes without duplicates;
#  - a file that is not a ptescope database is refused and left unchanged;
#    a newer schema is refused.
# Usage: cli.sh PTESCOPE SCRATCH_DIR [KILLS]
set -euo pipefail
P=$1
dir=$2
kills=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
traces=()
# Real recordings, one per distinct content (a copy would be skipped as stored).
declare -A seen
for t in "$here"/../fixtures/*.dat "$here"/../fixtures/*.txt /work/shared/traces/*.dat \
	/work/shared/traces/*.txt; do
	[ -f "$t" ] || continue
	h=$(sha256sum <"$t" | cut -c1-64)
	[ -n "${seen[$h]:-}" ] && continue
	seen[$h]=1
	traces+=("$t")
done
[ ${#traces[@]} -ge 2 ] || {
	echo "SKIP: real traces not found"
	exit 77
}
rm -rf "$dir"
mkdir -p "$dir"
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
q() { sqlite3 "$1" "$2"; }

"$P" replay -q "${traces[@]}" >"$dir/plain.txt"
"$P" replay -q -f json "${traces[@]}" >"$dir/plain.json"
"$P" replay -q --db "$dir/a.db" "${traces[@]}" >"$dir/stored.txt"
"$P" report --db "$dir/a.db" >"$dir/report.txt"
"$P" report --db "$dir/a.db" -f json >"$dir/report.json"
cmp "$dir/plain.txt" "$dir/stored.txt" || fail "replay --db prints another report than replay"
cmp "$dir/stored.txt" "$dir/report.txt" || fail "report differs from the replay that stored it"
cmp "$dir/plain.json" "$dir/report.json" || fail "JSON report differs from the replay's"
forks=$(q "$dir/a.db" 'SELECT count(*) FROM fork')
want=$(jq '.forks | length' "$dir/plain.json")
[ "$forks" -eq "$want" ] && [ "$forks" -gt 0 ] || fail "stored $forks forks, replay found $want"
passes=$(q "$dir/a.db" 'SELECT count(*) FROM pte_pass')
echo "stored $forks forks, $passes PTE passes; report identical to the replay (text and JSON)"

# --comm: exactly the forks of that comm.
"$P" report --db "$dir/a.db" -f json --comm forker >"$dir/comm.json"
[ "$(jq '[.forks[] | select(.parent_comm != "forker")] | length' "$dir/comm.json")" -eq 0 ] ||
	fail "--comm let other comms through"
[ "$(jq '.forks | length' "$dir/comm.json")" -eq "$(jq '[.forks[] | select(.parent_comm == "forker")] | length' "$dir/plain.json")" ] ||
	fail "--comm lost forks"

# Same files again: nothing added.
"$P" replay -q -f json --db "$dir/a.db" "${traces[@]}" >"$dir/again.json"
[ "$(q "$dir/a.db" 'SELECT count(*) FROM fork')" -eq "$forks" ] || fail "second replay added forks"
[ "$(jq '[.inputs[] | select(.skipped)] | length' "$dir/again.json")" -eq ${#traces[@]} ] ||
	fail "second replay did not report the inputs as skipped"
echo "second replay stored nothing"

# kill -9 at random points, then the same command completes the job.
start=$(date +%s%N)
"$P" replay -q --db "$dir/timing.db" "${traces[@]}" >/dev/null
total_ms=$((($(date +%s%N) - start) / 1000000))
for ((i = 1; i <= kills; i++)); do
	rm -f "$dir/k.db" "$dir/k.db-wal" "$dir/k.db-shm"
	"$P" replay -q --db "$dir/k.db" "${traces[@]}" >/dev/null 2>&1 &
	pid=$!
	ms=$((RANDOM % (total_ms + 20) + 1))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	if [ -f "$dir/k.db" ]; then
		ic=$(q "$dir/k.db" 'PRAGMA integrity_check' 2>&1 || true)
		[ "$ic" = ok ] || fail "kill $i after $ms ms: integrity_check: $ic"
		state=$(q "$dir/k.db" "SELECT count(*) || ' sources, ' || count(completed_wall_ns) || ' complete' FROM source" 2>&1 || true)
	else
		state="no database yet"
	fi
	"$P" replay -q --db "$dir/k.db" "${traces[@]}" >/dev/null || fail "rerun after kill $i failed"
	"$P" report --db "$dir/k.db" >"$dir/k.txt" || fail "report after kill $i"
	cmp -s "$dir/k.txt" "$dir/report.txt" || fail "kill $i after $ms ms: rerun gives another report"
	[ "$(q "$dir/k.db" 'SELECT count(*) FROM fork')" -eq "$forks" ] || fail "kill $i: duplicates"
	echo "kill $i after $ms ms ($state): rerun complete, report identical"
done

# Not ours: refused, unchanged.
printf 'precious\n%.0s' {1..100} >"$dir/notes.txt"
sum=$(sha256sum <"$dir/notes.txt")
if "$P" replay -q --db "$dir/notes.txt" "${traces[0]}" >/dev/null 2>"$dir/err"; then
	fail "a text file was accepted as a database"
fi
[ "$(sha256sum <"$dir/notes.txt")" = "$sum" ] || fail "the text file was modified"
grep -q "not a ptescope database" "$dir/err" || fail "unclear message: $(cat "$dir/err")"
echo "foreign file refused: $(cat "$dir/err")"
cp "$dir/a.db" "$dir/newer.db"
q "$dir/newer.db" 'PRAGMA user_version = 999' >/dev/null
if "$P" report --db "$dir/newer.db" >/dev/null 2>"$dir/err"; then
	fail "a newer schema was accepted"
fi
grep -q "newer ptescope" "$dir/err" || fail "unclear message: $(cat "$dir/err")"
echo "newer schema refused: $(cat "$dir/err")"
echo PASS
