#!/usr/bin/env bash
# ptescoped run by hand (no systemd StateDirectory=) creates the missing directories of its
# database and tracefs state file, mode 0700, instead of failing to open them. Its ready line
# names the port it is bound to (the kernel's pick for --listen ...:0).
set -euo pipefail
daemon=$1
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$daemon" --capture off --db "$dir/lib/ptescope/ptescope.db" --state-file "$dir/state/x/tracefs-state" \
	--listen 127.0.0.1:0 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q 'ready:' "$dir/log" && break; sleep 0.1; done
grep -q 'ready:' "$dir/log" || { echo "FAIL: not ready:"; cat "$dir/log"; exit 1; }
# the ready line names the port the kernel picked for port 0, and it answers there
port=$(sed -n 's/.*ready:.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/log")
[ -n "$port" ] && [ "$port" != 0 ] || { echo "FAIL: ready line without the bound port:"; cat "$dir/log"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port" || { echo "FAIL: nothing listens on port $port"; exit 1; }
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
head -1 <&3 | grep -q ' 200' || { echo "FAIL: /healthz on port $port did not answer 200"; exit 1; }
exec 3<&-
kill -TERM "$pid"; wait "$pid" || { echo "FAIL: exit $?"; exit 1; }
for d in "$dir/lib/ptescope" "$dir/state/x"; do
	mode=$(stat -c %a "$d")
	[ "$mode" = 700 ] || { echo "FAIL: $d has mode $mode, want 700"; exit 1; }
done
[ -f "$dir/lib/ptescope/ptescope.db" ] || { echo "FAIL: no database"; exit 1; }
echo "ok: state directories created 0700, ready line names port $port"
