#!/bin/bash
# SPDX-License-Identifier: MIT
# Disk full: ingest into a database on a tiny tmpfs until the space runs out.
# The writer must stop with one clear "disk full" error, the database must
# pass integrity_check with every reported commit in it, and once there is
# room again the same command must finish the job without duplicates.
# Needs mount (root); exits 77 (skipped) without it.
#
# Usage: disk_full.sh STORE_DRIVER
set -uo pipefail
driver=$1
mnt=$(mktemp -d /tmp/ptescope-diskfull.XXXXXX)
cleanup() {
	umount "$mnt" 2>/dev/null
	rmdir "$mnt" 2>/dev/null
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=3m tmpfs "$mnt" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs (not root?)"
	exit 77
fi
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
src=$(mktemp -d /tmp/ptescope-diskfull-src.XXXXXX)
head -c 4096 /dev/urandom >"$src/a.dat"
head -c 4096 /dev/urandom >"$src/b.dat"
db=$mnt/full.db

"$driver" ingest "$db" -n 20000 -p 16 -b 200 "$src/a.dat" "$src/b.dat" >"$src/log" 2>"$src/err"
rc=$?
echo "writer exit status $rc: $(cat "$src/err")"
[ $rc -eq 3 ] || fail "expected the disk-full exit status 3, got $rc"
grep -q "disk full" "$src/err" || fail "message does not say disk full: $(cat "$src/err")"
[ "$(wc -l <"$src/err")" -eq 1 ] || fail "more than one line of error"

out=$("$driver" check "$db" -n 20000 "$src/a.dat" "$src/b.dat") || fail "check on the full disk: $out"
echo "after disk full: $(tr '\n' ' ' <<<"$out")"
committed=$(awk '$1 == "commit" && $2 ~ /a.dat$/ { n = $3 } END { print n + 0 }' "$src/log")
have=$(awk '$1 ~ /a.dat$/ { print $3 }' <<<"$out")
[ "$have" -ge "$committed" ] || fail "a.dat: $have forks stored, $committed were committed"
[ "$committed" -gt 0 ] || fail "nothing was committed before the disk filled (tmpfs too small?)"

# Room again: the same command finishes the job.
mount -o remount,size=256m "$mnt" || fail "remount"
"$driver" ingest "$db" -n 20000 -p 16 -b 200 "$src/a.dat" "$src/b.dat" >"$src/log2" 2>&1 ||
	fail "rerun after freeing space: $(cat "$src/log2")"
out=$("$driver" check "$db" -n 20000 "$src/a.dat" "$src/b.dat") || fail "final check: $out"
[ "$(grep -c ' complete 20000$' <<<"$out")" -eq 2 ] || fail "final state: $out"
rm -rf "$src"
echo "PASS: disk full gave one clear error, the database stayed sound, the rerun completed"
