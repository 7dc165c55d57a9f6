# SPDX-License-Identifier: MIT
"""Helpers for the HTTP tests: databases (real replays and synthetic volume),
the test driver (daemon/http*.c behind a stand-in core) on 127.0.0.1 with an
ephemeral port, and small HTTP calls that return status, headers and body."""
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

DRIVER = os.environ.get("HTTP_DRIVER")
PTESCOPE = os.environ.get("PTESCOPE")
SYNTH = os.environ.get("HTTP_SYNTH")
FIXTURES = os.environ.get("FIXTURES")
FAILS = []


def scratch(name):
    d = os.path.join(os.environ.get("SCRATCH", "/tmp/ptescope-http"), name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def check(cond, what):
    """Records a failed assertion (the test continues, exits 1 at the end)."""
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        FAILS.append(what)
    return cond


def finish():
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def replay_db(db, *traces):
    for t in traces:
        subprocess.run([PTESCOPE, "replay", "--db", db, t], check=True,
                       stdout=subprocess.DEVNULL)


def synth_db(db, forks, max_pass=8, seed=42):
    subprocess.run([SYNTH, db, str(forks), str(max_pass), str(seed)], check=True)


def sql(db, q, *args):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute(q, args).fetchall()
    finally:
        con.close()


# A fork's passes and VMAs as the store keeps them (store/store_packed.c): one packed row per
# fork, 32 bytes a pass (i32 vma, i32 ptes, i64 start_ns, i64 hold_ns, u32 flags, u32 0) and
# 32 bytes a VMA (i64 start_ns, i64 dur_ns, i32 passes, i32 ptes, u32 flags, u32 0); -1 = null.
PASS_FORMAT = "<iiqqII"
VMA_FORMAT = "<qqiiII"


def passes(db, where="1", *args):
    """[(fork_id, vma, ptes, start_ns, hold_ns, new_pmd, resumed)] of the forks matching WHERE
    (on fork f), in order; None for nulls."""
    import struct
    out = []
    for fid, data in sql(db, "SELECT f.id, p.data FROM fork f JOIN fork_pass p ON p.fork_id = "
                             "f.id WHERE " + where + " ORDER BY f.id", *args):
        for vma, ptes, start, hold, flags, _ in struct.iter_unpack(PASS_FORMAT, data):
            out.append((fid, vma, None if ptes < 0 else ptes, None if start < 0 else start,
                        None if hold < 0 else hold, flags & 1, (flags >> 1) & 1))
    return out


def vmas(db, where="1", *args):
    """[(fork_id, start_ns, dur_ns, passes, ptes, huge)] of the forks matching WHERE (on fork f),
    in order; None for nulls."""
    import struct
    out = []
    for fid, data in sql(db, "SELECT f.id, v.data FROM fork f JOIN fork_vma v ON v.fork_id = "
                             "f.id WHERE " + where + " ORDER BY f.id", *args):
        for start, dur, npass, ptes, flags, _ in struct.iter_unpack(VMA_FORMAT, data):
            out.append((fid, None if start < 0 else start, None if dur < 0 else dur,
                        None if npass < 0 else npass, None if ptes < 0 else ptes, flags & 1))
    return out


class Driver:
    """http_driver on 127.0.0.1:0; .port once it listens; stop() checks a clean exit."""

    def __init__(self, db, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen([DRIVER, "--db", db] + list(args), stdout=subprocess.PIPE,
                                  env=e, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("port "):
            self.p.kill()
            raise RuntimeError("http_driver did not start: %r" % line)
        self.port = int(line.split()[1])

    def stop(self):
        rc = sigterm(self.p)
        check(rc == 0, "server stops cleanly on SIGTERM (exit %d)" % rc)


def sigterm(p, timeout=30):
    """Stops process @p with SIGTERM, SIGKILL after @timeout s: its exit status (-9: killed)."""
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return -9


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on now (for a daemon to bind)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=30):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def get_json(port, path, **kw):
    st, hd, body = request(port, "GET", path, **kw)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, {"_raw": body[:200]}


def raw(port, data, host="127.0.0.1", timeout=10, read=True):
    """Sends raw bytes; returns what came back until the server closed or timed out."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if b"\r\n\r\n" in out and b"Content-Length" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                         if l.lower().startswith(b"content-length:")][0]
                    if len(rest) >= n:
                        break
        except socket.timeout:
            pass
    s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def upload(port, path, body, headers=None, timeout=60):
    """POSTs @body the way curl does for large bodies (Expect: 100-continue):
    the body is only sent once the server said 100 Continue, so a refusal
    (401, 413) comes back before it. Returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    h = {"Host": "127.0.0.1", "Content-Length": str(len(body)), "Expect": "100-continue",
         "Connection": "close"}
    h.update(headers or {})
    s.sendall(("POST %s HTTP/1.1\r\n" % path).encode() +
              b"".join(("%s: %s\r\n" % kv).encode() for kv in h.items()) + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    if buf.startswith(b"HTTP/1.1 100"):
        buf = buf.split(b"\r\n\r\n", 1)[1]
        s.sendall(body)
    while True:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hd = dict((l.split(":", 1)[0].lower(), l.split(":", 1)[1].strip()) for l in lines[1:] if ":" in l)
    return status_of(buf), hd, rest
