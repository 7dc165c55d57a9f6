#!/bin/bash
# SPDX-License-Identifier: MIT
# Store benchmark, figures side by side in one run:
#  - forks/s and passes/s stored, bytes per fork on disk (store_bench, N forks
#    with VMA/pass detail spread over a week);
#  - latency of the stats/top/timeseries/fork-list queries over those forks
#    (goal: stats p99 < 50 ms over 1 M forks);
#  - `ptescope replay` time with --db next to the same replay without it, on
#    the real recordings (goal: storing adds at most 20%).
# Use a release build (no sanitizers): bench.sh BUILD_DIR [FORKS]
set -euo pipefail
build=${1:?usage: bench.sh BUILD_DIR [FORKS]}
forks=${2:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
bench=$build/tests/store/store_bench
P=$build/cli/ptescope
scratch=$(mktemp -d /tmp/ptescope-store-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

echo "== store: $forks synthetic forks (up to 16 passes each), default options (WAL, synchronous=NORMAL)"
"$bench" "$scratch/bench.db" "$forks" 16 | sed 's/^/  /'
echo "  (reference on this box: plain SQLite inserts ~2 M rows/s without indexes, ~0.4 M rows/s with two)"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ms() {
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}
if [ -x "$P" ]; then
	echo
	echo "== ptescope replay with and without --db (median of 5 runs, ms; fresh database each run)"
	printf '  %-40s %10s %10s %10s\n' trace "no --db" "--db" overhead
	for t in "$here"/../../fixtures/*.dat "$here"/../../fixtures/*.txt /work/shared/traces/*.dat \
		/work/shared/traces/*.txt; do
		[ -f "$t" ] || continue
		base=$(basename "$t")
		case " ${done_names:-} " in *" $base "*) continue ;; esac
		done_names="${done_names:-} $base"
		plain=$(for i in 1 2 3 4 5; do ms "$P" replay -q "$t"; done | median)
		stored=$(for i in 1 2 3 4 5; do
			rm -f "$scratch/r.db" "$scratch/r.db-wal" "$scratch/r.db-shm"
			ms "$P" replay -q --db "$scratch/r.db" "$t"
		done | median)
		printf '  %-40s %10s %10s %9s%%\n' "$base" "$plain" "$stored" \
			"$(awk -v a="$plain" -v b="$stored" 'BEGIN { printf "%+.0f", a ? 100 * (b - a) / a : 0 }')"
	done
	printf '  %s\n' "(the overhead includes hashing the file, creating the database and its fsyncs)"
fi
