#!/usr/bin/env python3
"""ptescoped under a real systemd (label systemd): the Debian package installed, started, hung,
reloaded, stopped, upgraded and purged in a Debian 12 guest whose PID 1 is systemd (sdvm.py over
the tests/vm harness: Debian's kernel under qemu TCG).

Fed by the .deb the package tier built (tests/package, --deb), a copy of it with a higher version
made here (the upgrade), the static `forker` workload (tests/vm/workloads) and the VM cache. One
boot checks, in this order:
  - dpkg -i enables and starts nothing;
  - `systemctl start ptescoped` (graph capture, the unit's own sandbox) returns when the daemon
    is READY: active, StatusText set, /metrics and the API answering at once; forks of a workload
    are recorded with their fork-path phases; `systemd-analyze security` on the running unit;
  - `systemctl reload` applies a changed config (log level; a bad file is refused and kept out);
    the journal has the daemon's lines at their priorities (info 6, warning 4, error 3);
  - SIGSTOP: the watchdog kills the daemon, the unit's ExecStopPost= (`ptescoped --repair`)
    undoes what it left in tracefs, systemd restarts it and the new one sets up again;
  - `systemctl stop` leaves tracefs as it was before the first start;
  - an upgrade keeps the changed config and the database and restarts the enabled service;
  - purge removes /var/lib/ptescope and the config; tracefs is as before.
The guest is slow (TCG; setting function_graph alone took 85-125 s of a loaded guest): a drop-in
gives the unit TCG-sized start and stop timeouts, each step has its own timeout and a failure says
which step and shows the console's tail. Exit 77 (skip) when the VM, mmdebstrap or the .deb
cannot be had.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdvm  # noqa: E402
from sdvm import vmlib  # noqa: E402

MAX_EXPOSURE = 2.0

SCENARIO = r"""
set -u
T=/sys/kernel/tracing
O=/tmp/out
mkdir -p $O /host/out
trap 'cp -r $O/. /host/out/' EXIT
U=ptescoped
step() { echo "PTESCOPE-STEP: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "step $*"; }
snap() {
	for f in current_tracer tracing_on trace_clock buffer_size_kb set_event set_ftrace_filter \
		set_graph_function set_ftrace_pid options/funcgraph-irqs options/record-cmd \
		events/sched/sched_switch/enable events/sched/sched_switch/filter \
		events/sched/sched_process_fork/enable kprobe_events; do
		printf '%s: ' $f
		if [ $f = buffer_size_kb ]; then
			sed 's/.*(expanded: \([0-9]*\))/\1/' $T/$f | awk '{print int(($1 + 8) / 16) * 16}'
		else
			cat $T/$f 2>/dev/null | tr '\n' ' '; echo
		fi
	done
	ls $T/instances
}
show() { systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -p StatusText \
	-p Result $U; }
# timed: NAME SECONDS COMMAND...: runs it under a timeout, records exit and seconds
timed() {
	local n=$1 s=$2 t0 rc=0
	shift 2
	t0=$(up)
	timeout $s "$@" > $O/$n.out 2>&1 || rc=$?
	echo $rc > $O/$n.exit
	echo "$t0 $(up)" | awk '{printf "%.1f\n", $2 - $1}' > $O/$n.secs
	step "$n: exit $rc in $(cat $O/$n.secs) s"
	[ $rc = 0 ] || fail "$n: exit $rc: $(tail -5 $O/$n.out)"
	return $rc
}
# wait_for NAME SECONDS TEST...: polls a condition once a second
wait_for() {
	local n=$1 s=$2 k
	shift 2
	for k in $(seq $s); do "$@" && { echo $k > $O/$n.secs; return 0; }; sleep 1; done
	fail "$n: not within $s s"
	return 1
}
# a step the rest depends on failed: keep what says why and end the scenario
give_up() {
	journalctl -o short-monotonic --no-pager -u $U > $O/journal.txt
	systemctl status --no-pager $U > $O/systemctl-status.txt 2>&1
	exit 1
}
# config KEY VALUE: sets a key of the installed config (appended when the file has no such line)
config() {
	local f=/etc/ptescope/ptescoped.conf
	if grep -q "^#* *$1 = " $f; then sed -i "s|^#* *$1 = .*|$1 = $2|" $f; else echo "$1 = $2" >> $f; fi
}
api() { curl -sf --max-time 30 http://127.0.0.1:9466$1; }

systemctl --version | head -1 > $O/systemd-version
wait_for boot 300 sh -c 'systemctl is-system-running | grep -qE "running|degraded"'
systemctl --failed --no-legend > $O/failed-units
dmesg -c > $O/dmesg-boot
snap > $O/tracefs-before

step "install"
timed install 300 dpkg -i /root/ptescope.deb || give_up
systemctl is-enabled $U > $O/enabled-after-install 2>&1
systemctl is-active $U > $O/active-after-install 2>&1
# TCG-sized start and stop: setting up or taking down function_graph takes minutes here;
# a watchdog's SIGABRT waits (the process is stopped) for TimeoutAbortSec, as without
# the drop-in (TimeoutStopSec=30s), before SIGKILL
mkdir -p /etc/systemd/system/$U.service.d
printf '[Service]\nTimeoutStartSec=900\nTimeoutStopSec=900\nTimeoutAbortSec=30s\n' > /etc/systemd/system/$U.service.d/tcg.conf
config capture graph
config instance vm-test
systemctl daemon-reload
systemctl enable $U 2> /dev/null

step "start (graph capture under the unit's sandbox)"
timed start 900 systemctl start $U || give_up
show > $O/show-start
api /metrics > $O/metrics-start; echo $? > $O/metrics-start.exit
api /api/v1/status > $O/status-start.json
snap > $O/tracefs-running
timeout 300 forker --mib 16 --forks 4 --thp off > $O/forker.gt 2>&1 || fail "forker: exit $?"
wait_for forks 120 sh -c "curl -sf 'http://127.0.0.1:9466/api/v1/forks?comm=forker' > $O/forks.json && grep -q child_pid $O/forks.json"
timed security 300 systemd-analyze security --no-pager $U

step "reload"
config log-level debug
config slow-fork-us 1234
# needs a restart: a warning
config web-root /usr/share/ptescope/web/
timed reload 300 systemctl reload $U
wait_for reload-log 60 sh -c "journalctl -u $U -o cat | grep -q 'configuration reloaded'"
api /api/v1/status > $O/status-reload.json
echo 'no-such-option = 1' >> /etc/ptescope/ptescoped.conf
timed reload-bad 300 systemctl reload $U
sed -i '/^no-such-option/d' /etc/ptescope/ptescoped.conf
wait_for reload-refused 60 sh -c "journalctl -u $U -o cat | grep -q 'reload refused'"
systemctl is-active $U > $O/active-after-bad-reload 2>&1

step "hang: SIGSTOP, the watchdog"
show > $O/show-before-hang
PID=$(systemctl show -p MainPID --value $U)
kill -STOP $PID
t0=$(up)
wait_for restarted 900 sh -c "[ \$(systemctl show -p NRestarts --value $U) -ge 1 ] && systemctl is-active -q $U"
echo "$t0 $(up)" | awk '{printf "%.1f\n", $2 - $1}' > $O/watchdog.secs
step "restarted after $(cat $O/watchdog.secs) s"
show > $O/show-after-hang
api /api/v1/status > $O/status-after-hang.json
snap > $O/tracefs-after-restart

step "stop"
timed stop 900 systemctl stop $U
snap > $O/tracefs-after-stop
sqlite3 /var/lib/ptescope/ptescope.db 'select count(*) from fork' > $O/db-forks-before-upgrade 2>&1
timed start2 900 systemctl start $U

step "upgrade"
PID=$(systemctl show -p MainPID --value $U)
timed upgrade 900 dpkg -i /root/ptescope-upgrade.deb
dpkg-query -W -f='${Version}' ptescope > $O/version-after-upgrade
systemctl is-active $U > $O/active-after-upgrade 2>&1
[ "$(systemctl show -p MainPID --value $U)" != "$PID" ] && echo yes > $O/restarted-by-upgrade
cp /etc/ptescope/ptescoped.conf $O/conf-after-upgrade
ls /etc/ptescope > $O/etc-after-upgrade
sqlite3 /var/lib/ptescope/ptescope.db 'select count(*) from fork' > $O/db-forks-after-upgrade 2>&1

step "purge"
timed purge 900 dpkg --purge ptescope
ls -d /var/lib/ptescope /etc/ptescope/ptescoped.conf /lib/systemd/system/$U.service \
	> $O/left-after-purge 2>&1
snap > $O/tracefs-after-purge
journalctl -o json --no-pager _SYSTEMD_UNIT=$U.service > $O/journal-daemon.json
journalctl -o short-monotonic --no-pager -u $U > $O/journal.txt
dmesg > $O/dmesg
"""


def read(out, name):
    p = os.path.join(out, name)
    return open(p, errors="replace").read() if os.path.exists(p) else None


def upgrade_deb(deb, out):
    """A copy of `deb` with the version bumped (+up1): what dpkg sees as an upgrade."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-R", deb, tmp], check=True)
        ctl = os.path.join(tmp, "DEBIAN", "control")
        text = open(ctl).read()
        text = re.sub(r"^Version: (\S+)$", r"Version: \1+up1", text, flags=re.M)
        open(ctl, "w").write(text)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", tmp, out], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def exposure(text):
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", text or "")
    return float(m.group(1)) if m else None


BAD_KERNEL_LOG = ("soft lockup", "Oops", "BUG:", "RCU stall", "general protection fault",
                  "Kernel panic")


def jread(out, name):
    try:
        return json.loads(read(out, name) or "null")
    except json.JSONDecodeError:
        return None


def show(out, name):
    return dict(ln.split("=", 1) for ln in (read(out, name) or "").splitlines() if "=" in ln)


def exit_ok(out, name, bad):
    if (read(out, name + ".exit") or "").strip() != "0":
        bad(f"{name}: exit {(read(out, name + '.exit') or 'missing').strip()}:\n"
            f"{(read(out, name + '.out') or '')[-1500:]}")


def secs(out, name):
    return (read(out, name + ".secs") or "?").strip()


def check_install(out, bad):
    exit_ok(out, "install", bad)
    enabled = (read(out, "enabled-after-install") or "").strip()
    active = (read(out, "active-after-install") or "").strip()
    if enabled != "disabled" or active != "inactive":
        bad(f"after dpkg -i the service is {enabled!r} and {active!r} (want disabled, inactive)")
    print(f"install: {secs(out, 'install')} s, service {enabled}, {active}")


def check_start(out, bad):
    exit_ok(out, "start", bad)
    sh = show(out, "show-start")
    if sh.get("ActiveState") != "active" or sh.get("SubState") != "running":
        bad(f"right after systemctl start: {sh}")
    if not sh.get("StatusText", "").startswith("capture graph"):
        bad(f"StatusText {sh.get('StatusText')!r} (want 'capture graph, listening on ...')")
    if (read(out, "metrics-start.exit") or "").strip() != "0" or \
            "ptescope_" not in (read(out, "metrics-start") or ""):
        bad("/metrics did not answer right after systemctl start")
    st = jread(out, "status-start.json") or {}
    cap = st.get("capture") or {}
    if cap.get("mode") != "graph" or not cap.get("healthy"):
        bad(f"capture under the sandbox: {cap}")
    print(f"start: systemctl start returned in {secs(out, 'start')} s, active, StatusText "
          f"{sh.get('StatusText')!r}, capture {cap.get('mode')} healthy={cap.get('healthy')}")


def check_forks(out, bad):
    gt = [g for g in vmlib.read_ground_truth(os.path.join(out, "forker.gt"))
          if g.get("type") == "fork"]
    got = {f["child_pid"]: f for f in (jread(out, "forks.json") or {}).get("forks", [])}
    missing = [g["child_pid"] for g in gt if g["child_pid"] not in got]
    if not gt or missing:
        bad(f"forks of the workload: {len(gt)} forked, not recorded: {missing}")
    timed = [f for f in got.values() if f.get("copy_page_range_ns")]
    if gt and len(timed) < len(gt):
        bad(f"only {len(timed)} of {len(gt)} recorded forks have a copy_page_range time")
    print(f"capture: {len(gt)} forks of forker, {len(gt) - len(missing)} recorded, "
          f"{len(timed)} with copy_page_range times")


def check_security(out, bad):
    exit_ok(out, "security", bad)
    score = exposure(read(out, "security.out"))
    if score is None or score > MAX_EXPOSURE:
        bad(f"systemd-analyze security: exposure {score} (at most {MAX_EXPOSURE}):\n"
            f"{read(out, 'security.out')}")
    print(f"security: overall exposure {score} on the running unit")
    return score


def check_reload(out, bad):
    exit_ok(out, "reload", bad)
    exit_ok(out, "reload-bad", bad)
    cap = (jread(out, "status-reload.json") or {}).get("capture") or {}
    if cap.get("slow_fork_us") != 1234:
        bad(f"after reload slow_fork_us is {cap.get('slow_fork_us')} (the config says 1234)")
    if (read(out, "active-after-bad-reload") or "").strip() != "active":
        bad("a refused reload stopped the service")
    print(f"reload: applied (slow_fork_us {cap.get('slow_fork_us')}); a bad config refused, "
          "still active")


PRIORITIES = [("ready: capture", 6), ("configuration reloaded", 6),
              ("reload: web-root changed; takes effect at restart", 4), ("reload refused", 3)]


def check_journal(out, bad):
    entries = []
    for line in (read(out, "journal-daemon.json") or "").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    seen = []
    for text, prio in PRIORITIES:
        hits = [e for e in entries if text in str(e.get("MESSAGE", ""))]
        if not hits:
            bad(f"journal: no {text!r} line from the daemon")
            continue
        got = {int(e.get("PRIORITY", -1)) for e in hits}
        if got != {prio}:
            bad(f"journal: {text!r} at priority {sorted(got)} (want {prio})")
        seen.append(f"{text.split(':')[0]}={sorted(got)}")
    print(f"journal: {len(entries)} daemon lines; priorities {', '.join(seen)}")


def check_watchdog(out, bad):
    before, after = show(out, "show-before-hang"), show(out, "show-after-hang")
    if before.get("MainPID") == after.get("MainPID") or after.get("ActiveState") != "active":
        bad(f"after SIGSTOP: {before} -> {after}")
    journal = read(out, "journal.txt") or ""
    if "Watchdog timeout" not in journal:
        bad("the journal has no watchdog timeout for the stopped daemon")
    reason = ((jread(out, "status-after-hang.json") or {}).get("capture") or {}).get("reason", "")
    if "tracefs: repaired a setup left by ptescoped pid" not in journal:
        bad("ExecStopPost= did not repair what the killed daemon left in tracefs (no "
            "'tracefs: repaired a setup left by ptescoped pid' in the journal)")
    if read(out, "tracefs-after-restart") != read(out, "tracefs-running"):
        bad(f"tracefs after the restart differs from the first run's:\n"
            f"{read(out, 'tracefs-running')}---\n{read(out, 'tracefs-after-restart')}")
    print(f"watchdog: SIGSTOP to running again in {secs(out, 'watchdog')} s, restarts "
          f"{after.get('NRestarts')}, capture reason {reason!r}")


def check_tracefs(out, bad):
    before = read(out, "tracefs-before")
    for name in ("tracefs-after-stop", "tracefs-after-purge"):
        if read(out, name) != before:
            bad(f"{name} differs from before the first start:\n{before}---\n{read(out, name)}")
    exit_ok(out, "stop", bad)
    print(f"stop: {secs(out, 'stop')} s, tracefs as before: "
          f"{read(out, 'tracefs-after-stop') == before}")


def check_upgrade(out, bad):
    exit_ok(out, "upgrade", bad)
    version = (read(out, "version-after-upgrade") or "").strip()
    if not version.endswith("+up1"):
        bad(f"version after the upgrade: {version!r}")
    if (read(out, "active-after-upgrade") or "").strip() != "active" or \
            not read(out, "restarted-by-upgrade"):
        bad("the upgrade did not restart the enabled service")
    conf = read(out, "conf-after-upgrade") or ""
    for line in ("capture = graph", "slow-fork-us = 1234", "instance = vm-test"):
        if line not in conf.splitlines():
            bad(f"the upgrade lost the config line {line!r}")
    try:
        n0 = int(read(out, "db-forks-before-upgrade"))
        n1 = int(read(out, "db-forks-after-upgrade"))
    except (TypeError, ValueError):
        n0 = n1 = None
    if n0 is None or n0 <= 0 or n1 < n0:
        bad(f"database forks before/after the upgrade: {read(out, 'db-forks-before-upgrade')!r}"
            f" / {read(out, 'db-forks-after-upgrade')!r}")
    print(f"upgrade: {secs(out, 'upgrade')} s to {version}, config kept, database {n0} -> {n1} "
          "forks, service restarted")


def check_purge(out, bad):
    exit_ok(out, "purge", bad)
    left = read(out, "left-after-purge") or ""
    kept = [ln for ln in left.splitlines() if "No such file" not in ln]
    if kept:
        bad(f"purge left: {kept}")
    log = read(out, "dmesg") or ""
    hits = [ln for ln in log.splitlines() if any(b in ln for b in BAD_KERNEL_LOG)]
    if hits:
        bad("kernel log:\n" + "\n".join(hits[:20]))
    print(f"purge: {secs(out, 'purge')} s, state and config gone: {not kept}")


def prepare(a):
    debs = sorted(glob.glob(os.path.join(a.package_dir, "ptescope_*_*.deb")))
    if not debs:
        raise vmlib.VmUnavailable(f"no ptescope_*.deb in {a.package_dir} (ctest -L package)")
    forker = os.path.join(a.workloads_dir, "forker")
    if not os.access(forker, os.X_OK):
        raise vmlib.VmUnavailable(f"{forker} not built (build target vm-workloads)")
    os.makedirs(a.work, exist_ok=True)
    up = upgrade_deb(debs[-1], os.path.join(a.work, "ptescope-upgrade.deb"))
    kernel = vmlib.get_kernel(a.cache, a.kernel)
    files = [("root/ptescope.deb", debs[-1], 0o644), ("root/ptescope-upgrade.deb", up, 0o644),
             ("usr/local/bin/forker", forker, 0o755)]
    initrd = sdvm.build_initrd(a.cache, kernel, files, os.path.join(a.work, "initrd.cpio"))
    return kernel, initrd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--package-dir", required=True, help="where the package tier left the .deb")
    ap.add_argument("--workloads-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=int, default=3000)
    vmlib.add_kernel_option(ap)
    a = ap.parse_args()
    # the VM cache shared by checkouts, when there is one (the Debian root takes minutes to make)
    a.cache = os.environ.get("PTESCOPE_VM_CACHE") or a.cache
    share = os.path.join(a.work, "share")
    try:
        kernel, initrd = prepare(a)
        shutil.rmtree(share, ignore_errors=True)
        os.makedirs(share)
        status, secs_ = vmlib.boot(kernel, initrd, share, SCENARIO, timeout_s=a.timeout,
                                   mem_mib=sdvm.MEM_MIB, progress=True)
    except vmlib.VmUnavailable as e:
        print(f"skip: {e}")
        return vmlib.SKIP
    except vmlib.VmFailed as e:
        print(f"FAIL: {e}")
        return 1
    out = os.path.join(share, "out")
    print(f"guest: {kernel.release}, {(read(out, 'systemd-version') or '?').strip()}, "
          f"scenario exit {status}, {secs_:.0f} s")
    problems = [ln for ln in (read(share, "scenario.log") or "").splitlines()
                if ln.startswith("step ")]
    for check in (check_install, check_start, check_forks, check_security, check_reload,
                  check_journal, check_watchdog, check_tracefs, check_upgrade, check_purge):
        check(out, problems.append)
    for p in problems:
        print("FAIL:", p)
    if problems:
        for name in ("systemctl-status.txt", "journal.txt"):
            text = read(out, name)
            if text:
                print(f"--- guest {name} (last 60 lines) ---\n" +
                      "\n".join(text.splitlines()[-60:]))
        print(vmlib.guest_report(share, lines=80))
        return 1
    print("ok: ptescoped under systemd: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
