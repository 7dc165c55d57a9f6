#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An answer the client never reads does not hold its connection slot for
the 30 s inactivity timeout (issue 23, item 11): a client asks for 16 pages
of 1000 forks at once (pipelined: 11 MB, more than the sockets hold) and
reads nothing;
the server cuts the connection once the client has taken nothing for the
answer deadline (10 s), counted in /api/v1/status http.connections
answer_timeouts. A client that reads the same answer slowly (8 KB every
tenth of a second, for longer than the deadline) gets all of it."""
import os
import socket
import time

from common import Driver, check, finish, get_json, scratch, synth_db

d = scratch("unread")
db = os.path.join(d, "forks.db")
synth_db(db, 3000, 8)
srv = Driver(db)
P = srv.port
REQ = b"GET /api/v1/forks?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def conns():
    return get_json(P, "/api/v1/status")[1]["http"]["connections"]


base = conns()["open"]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the answers back up
s.connect(("127.0.0.1", P))
t0 = time.monotonic()
# pipelined: 16 answers of 680 KB, more than any socket buffer takes
s.sendall(REQ * 16)
gone = None
while time.monotonic() - t0 < 40:
    time.sleep(0.5)
    if conns()["open"] <= base:
        gone = time.monotonic() - t0
        break
print("unread answer: connection cut after %s s" % ("%.1f" % gone if gone else "more than 40"))
check(gone is not None and gone < 20,
      "the unread answer's connection is cut well before the 30 s inactivity timeout (%s)"
      % ("%.1f s" % gone if gone else "not in 40 s"))
c = conns()
check(c.get("answer_timeouts", 0) >= 1 and c.get("answer_timeout_s") == 10,
      "counted: answer_timeouts %s, answer_timeout_s %s"
      % (c.get("answer_timeouts"), c.get("answer_timeout_s")))
s.close()

# a slow reader is not cut: 8 KiB every 0.15 s, longer in all than the deadline
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", P))
s.sendall(REQ)
buf = b""
t0 = time.monotonic()
while time.monotonic() - t0 < 60:
    time.sleep(0.15)
    try:
        s.settimeout(5)
        b = s.recv(8192)
    except socket.timeout:
        break
    if not b:
        break
    buf += b
    head, _, body = buf.partition(b"\r\n\r\n")
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
    if n and len(body) >= n[0]:
        break
took = time.monotonic() - t0
s.close()
head, _, body = buf.partition(b"\r\n\r\n")
n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
check(buf.startswith(b"HTTP/1.1 200") and n and len(body) == n[0] and took > 10,
      "a slow reader gets the whole answer (%d of %s bytes in %.1f s)"
      % (len(body), n[0] if n else "?", took))
srv.stop()
finish()
