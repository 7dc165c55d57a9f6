#!/bin/sh
# Reads a real kernel function_graph text trace (from a file and through a
# pipe) and checks the reader's counts against grep counts of the same file.
# usage: real_text.sh TEXT_COUNT TRACE.txt
set -eu
tool=$1
trace=$2
[ -r "$trace" ] || { echo "missing $trace" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Independent expectations: the kernel prints one call per line.
{
	echo "entry $(grep -c '{$' "$trace")"
	echo "exit $(grep -c '|  *}' "$trace")"
	echo "exit_named $(grep -c '|  *} /\*' "$trace")"
	echo "leaf $(grep -c ');$' "$trace")"
	echo "fork $(grep -c 'sched_process_fork:' "$trace" || true)"
	echo "lost $(grep -c '^CPU:[0-9]* \[LOST' "$trace" || true)"
	echo "unparsed 0"
	echo "lines $(wc -l < "$trace")"
	echo "bad 0"
	for f in vm_normal_page copy_page_range _raw_spin_lock __cond_resched; do
		echo "leaf:$f $(grep -c "|  *$f();\$" "$trace" || true)"
		echo "entry:$f $(grep -c "|  *$f() {\$" "$trace" || true)"
		echo "exit:$f $(grep -c "} /\* $f \*/\$" "$trace" || true)"
	done
} > "$tmp/want"
funcs="vm_normal_page copy_page_range _raw_spin_lock __cond_resched"
# shellcheck disable=SC2086
"$tool" "$trace" $funcs > "$tmp/file"
# shellcheck disable=SC2086
cat "$trace" | "$tool" - $funcs > "$tmp/pipe"
# The file has no leaf of vm_normal_page that grep would miss, and at least some.
[ "$(grep -c 'vm_normal_page();' "$trace")" -gt 0 ]
diff -u "$tmp/want" "$tmp/file"
diff -u "$tmp/want" "$tmp/pipe"
echo "ok: $(tr '\n' ' ' < "$tmp/file")"
