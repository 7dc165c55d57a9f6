#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Host header allow-list against DNS rebinding (issue 23, item 9): a
web page the admin opens can make the browser send requests to 127.0.0.1:9466
under its own name (evil.example resolving to 127.0.0.1); they carry that name
in Host and must be refused on every endpoint (421, one-line JSON error),
while loopback names and addresses, the listen address and the configured
names (--allowed-hosts) are served. With the daemon (argv[1]): a bad value of
the key is refused at start."""
import json
import os
import subprocess
import sys

from common import Driver, check, finish, raw, replay_db, scratch, status_of, FIXTURES

d = scratch("host")
db = os.path.join(d, "forks.db")
replay_db(db, os.path.join(FIXTURES, "vm", "fork-path.dat"))
tok = os.path.join(d, "token")
with open(tok, "w") as f:
    f.write("host-test-token-0123456789\n")
os.chmod(tok, 0o600)
web = os.path.join(d, "web")
os.makedirs(web)
with open(os.path.join(web, "index.html"), "w") as f:
    f.write("<html></html>\n")


def ask(port, path, host, method="GET", extra=""):
    """Status and body of one request with Host @host (None: no Host, HTTP/1.0)."""
    if host is None:
        req = "%s %s HTTP/1.0\r\n%s\r\n" % (method, path, extra)
    else:
        req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n" % (
            method, path, host, extra)
    resp = raw(port, req.encode())
    return status_of(resp), resp.partition(b"\r\n\r\n")[2]


ENDPOINTS = [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/api/v1/status"),
             ("GET", "/api/v1/forks?limit=1"), ("GET", "/api/v1/stats"), ("GET", "/"),
             ("GET", "/api/v1/investigations"), ("GET", "/no/such/page"),
             ("POST", "/api/v1/replays"), ("DELETE", "/api/v1/investigations/current")]

srv = Driver(db, "--web-root", web, "--token-file", tok)
p = srv.port
for host in ("evil.example", "evil.example:%d" % p, "127.0.0.1.evil.example",
             "localhost.evil.example", "EVIL.example.", "192.168.1.1", "[2001:db8::1]:%d" % p,
             "localhost:80@evil.example", ""):
    for method, path in ENDPOINTS:
        st, body = ask(p, path, host, method,
                       "Content-Length: 0\r\n" if method != "GET" else "")
        try:
            err = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            err = None
        check(st == 421 and err and "\n" not in err,
              "Host %r, %s %s: 421 with a one-line JSON error (%d %s)"
              % (host, method, path, st, err))
for host in ("127.0.0.1", "127.0.0.1:%d" % p, "localhost", "LOCALHOST:%d" % p, "localhost.",
             "[::1]:%d" % p, "[::1]", "127.1.2.3", None):
    st, _ = ask(p, "/healthz", host)
    check(st == 200, "Host %r: served (%d)" % (host, st))
st, _ = ask(p, "/api/v1/forks?limit=1", "localhost:%d" % p)
check(st == 200, "Host localhost: a query is served (%d)" % st)
srv.stop()

# a configured name, and a listener on a routable address
srv = Driver(db, "--allowed-hosts", "ptescope.example.com,Other.Example")
p = srv.port
for host in ("ptescope.example.com", "PTESCOPE.example.com:%d" % p, "other.example"):
    st, _ = ask(p, "/healthz", host)
    check(st == 200, "configured name %r: served (%d)" % (host, st))
for host in ("example.com", "x.ptescope.example.com", "ptescope.example.com.evil"):
    st, _ = ask(p, "/healthz", host)
    check(st == 421, "%r is not a configured name: 421 (%d)" % (host, st))
srv.stop()

if len(sys.argv) > 1:
    for bad in ("evil example", "a,,b", "x" * 300, "a/b"):
        r = subprocess.run([sys.argv[1], "--capture", "off", "--db", os.path.join(d, "x.db"),
                            "--allowed-hosts", bad], stderr=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 2 and "allowed-hosts" in r.stderr and r.stderr.count("\n") == 1,
              "ptescoped --allowed-hosts %r refused in one line (%d: %s)"
              % (bad[:20], r.returncode, r.stderr.strip()))
finish()
