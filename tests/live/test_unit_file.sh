#!/usr/bin/env bash
# systemd/ptescoped.service: `systemd-analyze verify` is clean and the offline
# security exposure is at most 2.0. Skips (77) without systemd-analyze.
# Usage: test_unit_file.sh UNIT PTESCOPED
set -euo pipefail
unit=$1 daemon=$2
command -v systemd-analyze >/dev/null || { echo "skip: no systemd-analyze"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify needs ExecStart to exist: point it at the binary under test
sed "s#/usr/sbin/ptescoped#$daemon#" "$unit" > "$work/ptescoped.service"
out=$(systemd-analyze verify "$work/ptescoped.service" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "verify is not clean:"; echo "$out"; exit 1; }
sec=$(systemd-analyze security --offline=yes "$work/ptescoped.service" 2>&1)
level=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "exposure: $level"
[ -n "$level" ] || { echo "$sec"; exit 1; }
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { echo "$sec"; echo "exposure $level > 2.0"; exit 1; }
