#!/usr/bin/env bash
# The Debian package (label package): builds ptescope_*.deb with
# `dpkg-buildpackage -b` from a copy of the source tree (the files git knows,
# committed or not, so the tree itself stays clean and the .deb does not land
# beside it), then checks what it holds: the programs and the dat-reader
# helper, the unit, the config as a conffile (the dashboard's web-root on),
# the example config, the dashboard, the fleet files (Prometheus rules, Grafana),
# man pages, docs; no build path in the
# programs; the service neither enabled nor started on install; purge removing
# /var/lib/ptescope; lintian without errors (its warnings are printed). The
# packaged ptescope then replays a committed recording through the packaged
# helper. Installing, upgrading and purging for real is the systemd tier's job
# (tests/systemd: a Debian 12 guest with systemd as PID 1), which takes the
# .deb from WORK.
#
# Usage: test_package.sh SOURCE_DIR WORK_DIR. Exit 77 (skipped) without
# dpkg-buildpackage, debhelper or lintian (scripts/install-deps build test).
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(realpath -m "$2")
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for t in dpkg-buildpackage dh lintian; do
	command -v $t >/dev/null || { echo "skip: $t missing (scripts/install-deps test)"; exit 77; }
done

rm -rf "$work"
mkdir -p "$work/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z -co --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$work/src" -xf -
else
	tar -C "$src" --exclude='./build*' --exclude=node_modules -cf - . | tar -C "$work/src" -xf -
fi

start=$(date +%s)
echo "== dpkg-buildpackage -b (log: $work/build.log)"
if ! (cd "$work/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
	tail -40 "$work/build.log"
	echo "FAIL: dpkg-buildpackage -b"
	exit 1
fi
echo "built in $(($(date +%s) - start)) s"
deb=$(ls "$work"/ptescope_*_*.deb)
changes=$(ls "$work"/ptescope_*.changes)

echo "== contents of $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/bin/ptescope /usr/sbin/ptescoped /usr/libexec/ptescope/ptescope-dat-reader \
	/lib/systemd/system/ptescoped.service /etc/ptescope/ptescoped.conf \
	/usr/share/doc/ptescope/examples/ptescoped.conf /usr/share/doc/ptescope/copyright \
	/usr/share/doc/ptescope/operations.md /usr/share/doc/ptescope/api.md \
	/usr/share/doc/ptescope/README.md /usr/share/ptescope/web/index.html \
	/usr/share/ptescope/web/main.js /usr/share/ptescope/web/main.css \
	/usr/share/ptescope/prometheus/ptescope-rules.yml \
	/usr/share/ptescope/prometheus/ptescope-rules-test.yml \
	/usr/share/ptescope/prometheus/prometheus.yml \
	/usr/share/ptescope/grafana/ptescope-dashboard.json \
	/usr/share/ptescope/grafana/provisioning/dashboards/ptescope.yml \
	/usr/share/ptescope/grafana/provisioning/datasources/ptescope-prometheus.yml \
	/usr/share/man/man1/ptescope.1.gz /usr/share/man/man8/ptescoped.8.gz; do
	grep -qx "$f" "$work/contents" || bad "$f not in the package"
done
grep -q '\.map$' "$work/contents" && bad "the dashboard's source map is packaged"

dpkg-deb -e "$deb" "$work/control"
dpkg-deb -x "$deb" "$work/root"
[ "$(cat "$work/control/conffiles" 2>/dev/null)" = /etc/ptescope/ptescoped.conf ] ||
	bad "conffiles: $(cat "$work/control/conffiles" 2>/dev/null) (want /etc/ptescope/ptescoped.conf)"
grep -qx 'web-root = /usr/share/ptescope/web' "$work/root/etc/ptescope/ptescoped.conf" ||
	bad "the config does not point web-root at the packaged dashboard"
grep -qx 'ExecStart=/usr/sbin/ptescoped --config /etc/ptescope/ptescoped.conf' \
	"$work/root/lib/systemd/system/ptescoped.service" || bad "the unit's ExecStart"
for b in usr/bin/ptescope usr/sbin/ptescoped usr/libexec/ptescope/ptescope-dat-reader; do
	grep -q "$work" "$work/root/$b" && bad "$b holds the build path $work"
done

# dh_installsystemd --no-enable: the one enable is the re-enable of a unit the
# administrator had enabled (was-enabled); the start is deb-systemd-invoke's,
# which starts enabled units only (checked for real by the systemd tier)
postinst=$work/control/postinst
n=$(grep -c "deb-systemd-helper enable" "$postinst" || true)
guard=$(grep -B2 "deb-systemd-helper enable" "$postinst" | grep -c "was-enabled" || true)
[ "$n" = 1 ] && [ "$guard" = 1 ] || bad "postinst enables the service on install"
grep -q 'rm -rf /var/lib/ptescope' "$work/control/postrm" || bad "postrm does not purge /var/lib/ptescope"
grep -qx 'ExecStopPost=/usr/sbin/ptescoped --repair --config /etc/ptescope/ptescoped.conf' \
	"$work/root/lib/systemd/system/ptescoped.service" || bad "the unit does not repair tracefs after a stop"
grep -qx 'RuntimeDirectory=ptescope' "$work/root/lib/systemd/system/ptescoped.service" ||
	bad "the unit makes no /run/ptescope for the tracefs locks"
grep -q '/usr/sbin/ptescoped --repair' "$work/control/prerm" || bad "prerm does not repair tracefs"
# purge keeps the tracefs state file a failed repair left (and nothing else)
mkdir -p "$work/purge/var/lib/ptescope/sub"
touch "$work/purge/var/lib/ptescope/ptescope.db" "$work/purge/var/lib/ptescope/sub/x" \
	"$work/purge/var/lib/ptescope/tracefs-state"
sed "s#/var/lib/ptescope#$work/purge/var/lib/ptescope#g; s/^#DEBHELPER#//" "$work/control/postrm" \
	>"$work/postrm.sh"
sh "$work/postrm.sh" purge 2>/dev/null
[ "$(cd "$work/purge/var/lib/ptescope" && find . -mindepth 1)" = ./tracefs-state ] ||
	bad "purge with a tracefs state file left: $(cd "$work/purge/var/lib/ptescope" && find . -mindepth 1 | tr '\n' ' ')"
rm "$work/purge/var/lib/ptescope/tracefs-state"
touch "$work/purge/var/lib/ptescope/ptescope.db"
sh "$work/postrm.sh" purge
[ ! -e "$work/purge/var/lib/ptescope" ] || bad "purge without a state file left /var/lib/ptescope"

echo "== the packaged programs"
fixture=$src/tests/fixtures/vm/fork-path.dat
if PTESCOPE_DAT_READER=$work/root/usr/libexec/ptescope/ptescope-dat-reader \
	"$work/root/usr/bin/ptescope" replay --format json "$fixture" >"$work/replay.json" 2>"$work/replay.err"; then
	forks=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["forks"]))' "$work/replay.json")
	echo "packaged ptescope replayed $(basename "$fixture"): $forks forks"
	[ "$forks" -gt 0 ] || bad "no fork replayed from $fixture"
else
	bad "packaged ptescope replay: $(cat "$work/replay.err")"
fi
"$work/root/usr/sbin/ptescoped" --help >/dev/null 2>&1 || bad "packaged ptescoped --help"

echo "== lintian"
start=$(date +%s)
status=0
lintian --pedantic --display-info --fail-on error "$changes" >"$work/lintian.out" 2>&1 || status=$?
grep -v 'running with root privileges' "$work/lintian.out" | tee "$work/lintian.txt" || true
echo "lintian took $(($(date +%s) - start)) s, exit $status"
[ "$status" = 0 ] || bad "lintian reports errors"
grep -q '^E:' "$work/lintian.txt" && bad "lintian: $(grep -c '^E:' "$work/lintian.txt") errors"

[ $fail = 0 ] && echo "package: all checks passed ($deb)"
exit $fail
