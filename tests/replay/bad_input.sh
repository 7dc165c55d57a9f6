#!/bin/sh
# Bad input never crashes, hangs or prints garbage: each case gets exit status 1
# and exactly one line on stderr naming the file (a trace.dat cut anywhere is
# refused); corrupt trace.dat variants
# (byte flips) may be read or refused, but never
# crash (no signal, no sanitizer report) and finish within the timeout.
# usage: bad_input.sh PTESCOPE TRACE.dat TEXT-TRACE
set -u
pt=$1 dat=$2 txt=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# expect_error NAME FILE: exit 1, one stderr line that names FILE
expect_error() {
	name=$1 file=$2
	timeout 120 "$pt" replay --quiet "$file" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" -ne 1 ]; then
		fail "$name: exit $rc, expected 1"
	elif [ "$lines" -ne 1 ]; then
		fail "$name: $lines lines on stderr, expected 1:"
		head -5 "$tmp/err"
	elif ! grep -qF -- "$file" "$tmp/err"; then
		fail "$name: the error does not name the file: $(cat "$tmp/err")"
	elif [ -s "$tmp/out" ]; then
		fail "$name: printed a report for a bad file"
	else
		echo "ok   $name: $(cat "$tmp/err")"
	fi
}

# no_crash NAME FILE: exit 0 or 1, no signal, no sanitizer report, no hang
no_crash() {
	name=$1 file=$2
	timeout 120 "$pt" replay --quiet --format json "$file" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		fail "$name: exit $rc"
		head -5 "$tmp/err"
	elif grep -q -e "Sanitizer" -e "runtime error" "$tmp/err"; then
		fail "$name: sanitizer report"
		head -5 "$tmp/err"
	elif [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
		fail "$name: refused with $(wc -l <"$tmp/err") stderr lines"
		head -5 "$tmp/err"
	fi
}

: >"$tmp/empty"
expect_error "empty file" "$tmp/empty"
head -c 65536 /dev/urandom >"$tmp/junk.bin"
expect_error "binary junk" "$tmp/junk.bin"
mkdir "$tmp/adir"
expect_error "a directory" "$tmp/adir"
expect_error "a missing file" "$tmp/missing.dat"
printf 'hello\nthis is not a trace\n' >"$tmp/prose.txt"
expect_error "text that is not a trace" "$tmp/prose.txt"
head -c 200 "$dat" >"$tmp/head-only.dat"
expect_error "trace.dat cut inside its header" "$tmp/head-only.dat"
head -c 100000 "$dat" >"$tmp/trunc100k.dat"
expect_error "trace.dat cut at 100 kB" "$tmp/trunc100k.dat"
{ printf '\027\010\104tracing9\000'; head -c 1000 /dev/urandom; } >"$tmp/v9.dat"
expect_error "trace.dat of an unknown version" "$tmp/v9.dat"

# a 100 MB line inside a real text trace: skipped and counted, the rest read
{ head -n 100 "$txt"; head -c 100000000 /dev/zero | tr '\0' 'x'; echo; tail -n 100 "$txt"; } >"$tmp/longline.txt"
timeout 300 "$pt" replay --quiet --format json "$tmp/longline.txt" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ]; then
	fail "100 MB line: exit $rc: $(head -3 "$tmp/err")"
elif ! python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))["inputs"][0]; sys.exit(0 if i["unparsed_lines"]>=1 and i["events"]>=150 else 1)' "$tmp/out"; then
	fail "100 MB line: not counted as unparsed, or the rest not read"
else
	echo "ok   100 MB line: counted as not understood, the rest read"
fi

# truncations of the real trace.dat at many points, and byte flips
size=$(stat -c %s "$dat")
for frac in 1 2 3 5 8 13 21 34 55 89 97 99; do
	head -c $((size * frac / 100)) "$dat" >"$tmp/cut$frac.dat"
	expect_error "trace.dat cut at $frac%" "$tmp/cut$frac.dat"
done
i=0
while [ $i -lt 24 ]; do
	cp "$dat" "$tmp/flip.dat"
	# deterministic offsets spread over the file, the header densely
	if [ $i -lt 12 ]; then off=$((i * 97 + 13)); else off=$((size / 24 * i + 7)); fi
	printf '\377\377\377\377' | dd of="$tmp/flip.dat" bs=1 seek=$off conv=notrunc status=none
	no_crash "trace.dat with bytes flipped at $off" "$tmp/flip.dat"
	i=$((i + 1))
done

if [ $fails -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "all bad-input cases handled"
