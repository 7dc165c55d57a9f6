#!/usr/bin/env bash
# HTTP benchmark: wrk on loopback against ptescoped's HTTP layer (http_driver:
# daemon/http*.c + metrics over a database of 1 million synthetic forks) and,
# side by side in the same run, a minimal libmicrohttpd server in the same
# threading mode. Prints requests/s and latency percentiles per endpoint.
#
#   tests/bench/http/bench.sh BUILD_DIR [FORKS] [SECONDS] [CONNECTIONS]
#
# Goals (issue "HTTP API and Prometheus metrics"): /healthz at >= 80% of the
# minimal server's requests/s; /api/v1/stats p99 under 50 ms. Use a build
# without sanitizers (RelWithDebInfo) for figures that mean something.
# Everything listens on 127.0.0.1 only; each wrk run is bounded by SECONDS.
set -euo pipefail
build=${1:?usage: bench.sh BUILD_DIR [FORKS] [SECONDS] [CONNECTIONS]}
forks=${2:-1000000}
secs=${3:-10}
conns=${4:-32}
threads=${PTESCOPE_HTTP_THREADS:-2}
command -v wrk >/dev/null || { echo "bench.sh: wrk not installed (Debian package wrk)" >&2; exit 77; }
work=${PTESCOPE_BENCH_DIR:-$(mktemp -d /var/tmp/ptescope-http-bench.XXXXXX)}
mkdir -p "$work"
db=$work/bench-$forks.db
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

if [ ! -s "$db" ]; then
	echo "== filling $db with $forks synthetic forks"
	t0=$(date +%s)
	"$build/tests/http/http_synth" "$db" "$forks" 8
	echo "   took $(($(date +%s) - t0)) s"
fi

port_of() { # waits for "port N" in a file
	for _ in $(seq 100); do
		p=$(awk '/^port /{print $2}' "$1" 2>/dev/null || true)
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.2
	done
	echo "bench.sh: server did not start" >&2
	exit 1
}

"$build/tests/http/http_driver" --db "$db" --no-detail --threads "$threads" \
	--max-conn 1024 --max-per-ip 1024 --comm-allow redis-server,postgres,python3,bash \
	>"$work/driver.out" &
pids+=($!)
minport=$((20000 + RANDOM % 20000))
"$build/tests/http/http_minimal" "$minport" "$threads" >"$work/minimal.out" &
pids+=($!)
dport=$(port_of "$work/driver.out")
mport=$(port_of "$work/minimal.out")

run() { # name url [connections] -> "name req/s p50 p99"
	out=$(wrk -t 2 -c "${3:-$conns}" -d "${secs}s" --latency "$2")
	rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
	p50=$(awk '$1=="50%"{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{print $2}' <<<"$out")
	errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
	printf '%-34s %12s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "$errs"
	echo "$rps" >"$work/rps-$1"
}

echo "== wrk -t 2 -c $conns -d ${secs}s, server threads $threads, $(nproc) cores, $forks forks"
run minimal_healthz "http://127.0.0.1:$mport/healthz"
run ptescoped_healthz "http://127.0.0.1:$dport/healthz"
run minimal_healthz_again "http://127.0.0.1:$mport/healthz"
run ptescoped_metrics "http://127.0.0.1:$dport/metrics"
run ptescoped_stats "http://127.0.0.1:$dport/api/v1/stats"
run ptescoped_forks_page "http://127.0.0.1:$dport/api/v1/forks?comm=redis-server&limit=100"
# Latency of the heavier queries without queueing behind each other: one
# connection per server thread (with more, p99 is mostly time spent waiting).
echo "== the same with $threads connections (one per server thread): service latency"
run ptescoped_stats_c$threads "http://127.0.0.1:$dport/api/v1/stats" "$threads"
run ptescoped_stats_24h_comm_c$threads "http://127.0.0.1:$dport/api/v1/stats?since=-1d&comm=postgres" "$threads"
run ptescoped_forks_page_c$threads "http://127.0.0.1:$dport/api/v1/forks?comm=redis-server&limit=100" "$threads"
m=$(cat "$work/rps-minimal_healthz" "$work/rps-minimal_healthz_again" | sort -n | tail -1)
p=$(cat "$work/rps-ptescoped_healthz")
echo "healthz_ratio $(echo "scale=3; $p / $m" | bc) (ptescoped / best minimal; goal >= 0.80)"
