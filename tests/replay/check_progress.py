#!/usr/bin/env python3
"""The progress indicator shows on a terminal and only there.

Runs `ptescope replay` on a long input three times: with stderr on a pseudo-terminal it must
print "reading FILE: ..." progress (for a trace.dat read by the page walk, a percentage of
its CPU data) and erase it before the report; with --quiet on the terminal, and with stderr on
a pipe, it must print nothing at all on stderr.
usage: check_progress.py PTESCOPE TRACE
"""
import os
import pty
import subprocess
import sys


def on_terminal(argv):
    """(exit status, what @argv wrote on a pseudo-terminal as its stderr)"""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=300), seen


def main():
    pt, trace = sys.argv[1], sys.argv[2]
    rc, seen = on_terminal([pt, "replay", "--format", "json", trace])
    fails = []
    if rc != 0:
        fails.append(f"exit {rc} on a terminal")
    if b"reading " not in seen:
        fails.append(f"no progress on a terminal: {seen[:200]!r}")
    if trace.endswith(".dat") and b"% (" not in seen:
        fails.append(f"no percentage for a trace.dat: {seen[:200]!r}")
    rc, quiet = on_terminal([pt, "replay", "--quiet", "--format", "json", trace])
    if rc != 0 or quiet:
        fails.append(f"--quiet on a terminal: exit {rc}, {quiet[:200]!r}")
    if not seen.rstrip(b"\r\n").endswith(b"\x1b[K"):
        fails.append(f"progress line not erased at the end: {seen[-80:]!r}")
    piped = subprocess.run([pt, "replay", "--format", "json", trace], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
    if piped.returncode != 0 or piped.stderr:
        fails.append(f"stderr not quiet without a terminal: {piped.stderr[:200]!r}")
    for f in fails:
        print("FAIL:", f)
    print(f"progress on a terminal: {seen.count(b'reading ')} updates; {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
