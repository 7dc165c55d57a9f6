#!/usr/bin/env python3
"""ptescoped repairs tracefs first, before anything that can fail, on a fake tracefs.

A run that died (SIGKILL, the OOM killer, the watchdog) leaves its state file. The next start
undoes what it recorded before it opens the database: a start that then fails (a database path
it cannot create) leaves nothing hooked. `ptescoped --repair` does that alone (the unit's
ExecStopPost=), even with a config file it cannot read, and exits 1 when it could not.
A second ptescoped on the same tracefs instance is refused before it touches anything: the
host-wide instance lock names the holder's pid.
"""
import fcntl
import os
import subprocess
import sys
import tempfile

daemon = sys.argv[1]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


def put(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def get(path):
    with open(path) as f:
        return f.read()


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def hexs(s):
    return s.encode().hex()


def fake_tracefs(top):
    for d in ("instances", "options", "events"):
        os.makedirs(os.path.join(top, d), exist_ok=True)
    # as a run of ours left it: our tracer and filter, our instance
    put(os.path.join(top, "current_tracer"), "function_graph\n")
    put(os.path.join(top, "set_ftrace_filter"), "kernel_clone\n")
    put(os.path.join(top, "tracing_on"), "1\n")
    put(os.path.join(top, "kprobe_events"), "")
    os.makedirs(os.path.join(top, "instances", "ptescoped"), exist_ok=True)


def dead_state(path, instance="ptescoped"):
    put(path, "ptescoped-tracefs-state 2\nboot %s\npid 999999\ninstance %s\n"
        "file current_tracer %s\nours current_tracer %s\n"
        "file set_ftrace_filter -\nours set_ftrace_filter %s\n"
        % (boot_id(), instance, hexs("nop"), hexs("function_graph"), hexs("kernel_clone\n")),
        0o600)


def run(*args, timeout=60):
    return subprocess.run([daemon, *args], capture_output=True, text=True, timeout=timeout)


def repaired(top):
    return (get(os.path.join(top, "current_tracer")) == "nop" and
            get(os.path.join(top, "set_ftrace_filter")) == "" and
            not os.path.exists(os.path.join(top, "instances", "ptescoped")))


with tempfile.TemporaryDirectory() as d:
    top, state, locks = os.path.join(d, "tracing"), os.path.join(d, "st", "tracefs-state"), \
        os.path.join(d, "locks")
    common = ["--tracefs", top, "--state-file", state, "--lock-dir", locks,
              "--listen", "127.0.0.1:0"]

    # 1. a start that fails on its database still repairs first
    fake_tracefs(top)
    dead_state(state)
    p = run(*common, "--capture", "graph", "--db", "/proc/ptescope-cannot/x.db")
    check(p.returncode != 0, "a start with a database it cannot open fails (exit %d)" % p.returncode)
    check(repaired(top), "... and the dead run's tracer, filter and instance are undone first "
          "(current_tracer %r)" % get(os.path.join(top, "current_tracer")))
    check(not os.path.exists(state), "... and its state file is gone")
    check("repaired a setup left by ptescoped pid 999999" in p.stderr,
          "... and the log says what was repaired")

    # 2. --repair alone, with a config file it cannot parse
    fake_tracefs(top)
    dead_state(state)
    put(os.path.join(d, "broken.conf"), "this is not key = value\n= =\n")
    p = run("--repair", "--config", os.path.join(d, "broken.conf"), *common)
    check(p.returncode == 0 and repaired(top),
          "--repair with a broken config file repairs from the command line's paths "
          "(exit %d: %s)" % (p.returncode, p.stderr.strip()[-200:]))
    p = run("--repair", *common)
    check(p.returncode == 0, "--repair with nothing left exits 0")

    # 3. --repair refuses an untrusted state file, and keeps it
    fake_tracefs(top)
    dead_state(state)
    os.chmod(state, 0o644)
    p = run("--repair", *common)
    check(p.returncode == 1 and "not trusted" in p.stderr and os.path.exists(state) and
          get(os.path.join(top, "current_tracer")) == "function_graph\n",
          "--repair refuses a state file others could write: exit 1, nothing written, "
          "the file kept")
    os.chmod(state, 0o600)

    # 4. another holds the instance: --repair and a start are refused, naming its pid
    st = os.stat(top)
    lock = os.path.join(locks, "tracefs-%x-%x.instance-ptescoped.lock" % (st.st_dev, st.st_ino))
    os.makedirs(locks, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, b"4242\n")
    p = run("--repair", *common)
    check(p.returncode == 1 and "in use by pid 4242" in p.stderr and
          get(os.path.join(top, "current_tracer")) == "function_graph\n",
          "--repair while another holds the instance: exit 1, the holder named, nothing "
          "written (%s)" % p.stderr.strip()[-160:])
    p = run(*common, "--capture", "graph", "--db", os.path.join(d, "x.db"))
    check(p.returncode != 0 and "in use by pid 4242" in p.stderr and
          os.path.isdir(os.path.join(top, "instances", "ptescoped")),
          "a second ptescoped on the same instance is refused before it touches it")
    # the state file names the locked instance: a run with another --instance does not
    # touch it either
    p = run("--repair", *common, "--instance", "other")
    check(p.returncode == 1 and "in use by pid 4242" in p.stderr and
          os.path.isdir(os.path.join(top, "instances", "ptescoped")),
          "--repair as another instance leaves the held instance the state file names")
    os.close(fd)
    p = run("--repair", *common)
    check(p.returncode == 0 and repaired(top), "the lock released: --repair undoes it")

sys.exit(1 if failures else 0)
