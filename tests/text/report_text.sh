#!/bin/sh
# Generates `trace-cmd report` text (default, -l latency, -t ns timestamps)
# from a real trace.dat and checks the reader's counts against grep counts of
# the same output. Exits 77 (skip) without trace-cmd or the .dat file.
# usage: report_text.sh TEXT_COUNT TRACE.dat
set -eu
tool=$1
dat=$2
command -v trace-cmd > /dev/null 2>&1 || { echo "trace-cmd not installed: skip"; exit 77; }
[ -r "$dat" ] || { echo "no $dat: skip"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for opt in "" -l -t; do
	# shellcheck disable=SC2086
	trace-cmd report $opt -i "$dat" > "$tmp/report" 2> "$tmp/stderr"
	[ -s "$tmp/report" ] || { echo "empty report ($opt)" >&2; exit 1; }
	{
		echo "entry $(grep -c 'funcgraph_entry:.*{$' "$tmp/report")"
		echo "exit $(grep -c 'funcgraph_exit:' "$tmp/report")"
		echo "exit_named $(grep -c 'funcgraph_exit:.*} /\*' "$tmp/report" || true)"
		echo "leaf $(grep -c 'funcgraph_entry:.*;$' "$tmp/report")"
		echo "fork $(grep -c ' sched_process_fork: ' "$tmp/report")"
		echo "lost $(grep -c '^CPU:[0-9]* \[.*EVENTS' "$tmp/report" || true)"
		echo "unparsed 0"
		echo "lines $(wc -l < "$tmp/report")"
		echo "bad 0"
		echo "leaf:vm_normal_page $(grep -c 'funcgraph_entry:.*|  *vm_normal_page();$' "$tmp/report")"
		echo "entry:vm_normal_page $(grep -c 'funcgraph_entry:.*|  *vm_normal_page() {$' "$tmp/report")"
		echo "exit:vm_normal_page $(grep -c 'funcgraph_exit:.*} /\* vm_normal_page \*/$' "$tmp/report" || true)"
	} > "$tmp/want"
	"$tool" "$tmp/report" vm_normal_page > "$tmp/got"
	diff -u "$tmp/want" "$tmp/got" || { echo "mismatch for 'trace-cmd report $opt'" >&2; exit 1; }
	echo "ok ($opt): $(tr '\n' ' ' < "$tmp/got")"
done
