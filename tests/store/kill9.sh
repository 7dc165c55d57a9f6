#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 the store's writer at random points of a multi-file ingest, many
# times. After every kill: PRAGMA integrity_check passes, every fork the
# writer reported committed is there, no fork is stored twice, the rollups
# count exactly the stored forks. A kill while the writer was still creating
# the file leaves what the store itself takes as a new database; the checker
# opens it once as the store would (see store_driver.c); the first kill lands
# early, often there. Then the same command, run to the end, completes the
# job without duplicates, and a further run adds nothing.
#
# The kills are spread over one ingest's duration, so the test takes about
# ITERATIONS/2 ingests; on a busy machine (one ingest 3 s idle, over 20 s
# beside the VM tests) new kills stop once KILL9_BUDGET_S (default 120) is
# spent, after at least 10.
#
# Usage: kill9.sh STORE_DRIVER SCRATCH_DIR [ITERATIONS]
set -euo pipefail
driver=$1
dir=$2
iters=${3:-25}
budget_s=${KILL9_BUDGET_S:-120}
min_iters=10
forks=5000
rm -rf "$dir"
mkdir -p "$dir"
db=$dir/kill9.db
files=()
for i in 1 2 3 4; do
	head -c 65536 /dev/urandom >"$dir/trace$i.dat"
	files+=("$dir/trace$i.dat")
done

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Time one whole ingest to spread the kills over it.
start=$(date +%s%N)
"$driver" ingest "$dir/timing.db" -n $forks -b 250 "${files[@]}" >/dev/null
total_ms=$((($(date +%s%N) - start) / 1000000))
echo "one uninterrupted ingest: ${total_ms} ms"

kills_mid_file=0
kills_at_creation=0
loop_start=$(date +%s)
kills=0
for ((it = 1; it <= iters; it++)); do
	if [ "$it" -gt $min_iters ] && [ $(($(date +%s) - loop_start)) -ge "$budget_s" ]; then
		echo "time budget of ${budget_s} s spent after $kills kills"
		break
	fi
	kills=$it
	log=$dir/run$it.log
	# Created here: a kill can land before the child has opened it (on a
	# loaded machine, tens of ms after the fork), which means nothing committed.
	: >"$log"
	"$driver" ingest "$db" -n $forks -b 250 "${files[@]}" >"$log" 2>"$dir/run$it.err" &
	pid=$!
	delay_ms=$((RANDOM % (total_ms + 50) + 5))
	[ "$it" -gt 1 ] || delay_ms=$((RANDOM % 60 + 1))
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	cerr=$dir/check$it.err
	out=$("$driver" check "$db" -n $forks "${files[@]}" 2>"$cerr") ||
		fail "iteration $it: check failed: $out $(cat "$cerr")"
	grep -q 'nothing stored yet' "$cerr" && kills_at_creation=$((kills_at_creation + 1))
	for f in "${files[@]}"; do
		state=$(awk -v f="$f" '$1 == f { print $2, $3 }' <<<"$out")
		read -r st count <<<"$state"
		committed=$(awk -v f="$f" '$1 == "commit" && $2 == f { n = $3 } END { print n + 0 }' "$log")
		if grep -q "^done $f " "$log"; then
			[ "$st" = complete ] || fail "iteration $it: $f reported done but is $st"
		fi
		case $st in
		complete) [ "$count" -eq $forks ] || fail "iteration $it: $f complete with $count" ;;
		incomplete)
			kills_mid_file=$((kills_mid_file + 1))
			[ "$count" -ge "$committed" ] ||
				fail "iteration $it: $f has $count forks, $committed were committed"
			;;
		absent) [ "$committed" -eq 0 ] || fail "iteration $it: $f absent, $committed committed" ;;
		esac
	done
	echo "iteration $it: killed after ${delay_ms} ms: $(tr '\n' ' ' <<<"$out")"
	# Once a run got through everything, start over so that kills keep
	# landing in the middle of an ingest.
	if [ "$(grep -c " complete $forks\$" <<<"$out")" -eq 4 ]; then
		rm -f "$db" "$db-wal" "$db-shm"
		echo "  (all stored: starting over with an empty database)"
	fi
done
echo "kills that left a file half-stored: $kills_mid_file"
echo "kills while the writer was creating the database: $kills_at_creation"

"$driver" ingest "$db" -n $forks "${files[@]}" >"$dir/final.log" || fail "final ingest failed"
out=$("$driver" check "$db" -n $forks "${files[@]}") || fail "final check failed: $out"
[ "$(grep -c " complete $forks\$" <<<"$out")" -eq 4 ] || fail "final state: $out"
"$driver" ingest "$db" -n $forks "${files[@]}" >"$dir/again.log" || fail "repeat ingest failed"
[ "$(grep -c '^skip ' "$dir/again.log")" -eq 4 ] || fail "repeat ingest stored again: $(cat "$dir/again.log")"
total=$(sqlite3 "$db" 'SELECT count(*) FROM fork')
[ "$total" -eq $((4 * forks)) ] || fail "total forks $total"
echo "PASS: $kills kills, final database complete ($total forks), repeat run stored nothing"
