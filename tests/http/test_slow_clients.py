#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Slow and idle clients cannot lock others out (issue 12): with the default
limits, 200 connections from 127.0.0.1 each sending one header byte per
second (reconnecting when cut), /healthz from the same address is answered
every time, quickly. Prints the figures docs/api.md quotes: the time to
answer under the attack and when the trickling connections were cut."""
import os
import socket
import threading
import time

from common import Driver, check, finish, get_json, scratch, synth_db

ATTACK = int(os.environ.get("SLOW_CONNS", "200"))
SECONDS = float(os.environ.get("SLOW_SECONDS", "20"))

d = scratch("slow")
db = os.path.join(d, "slow.db")
synth_db(db, 100)
srv = Driver(db, "--threads", "2")  # the defaults and threads ptescoped runs with
P = srv.port
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"


class Trickler:
    """One attacking connection: one more byte of its head per second."""

    def __init__(self):
        self.s, self.sent, self.born = None, 0, time.monotonic()
        self.connect()

    def connect(self):
        try:
            self.s = socket.create_connection(("127.0.0.1", P), timeout=1)
            self.s.setblocking(False)
        except OSError:
            self.s = None
        self.sent, self.born = 0, time.monotonic()

    def tick(self, cuts):
        if self.s is None:
            self.connect()
            return
        try:
            self.s.send(HEAD[self.sent:self.sent + 1])
            self.sent += 1
            try:
                if self.s.recv(1) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                pass
        except OSError:
            cuts.append(time.monotonic() - self.born)
            self.s.close()
            self.connect()


def run_attack(nconns, seconds):
    """@nconns tricklers for @seconds while /healthz is asked once a second:
    (latencies of the answers, failures, cut times, the status at the end)."""
    stop, cuts = threading.Event(), []

    def attack():
        conns = [Trickler() for _ in range(nconns)]
        while not stop.is_set():
            t = time.monotonic()
            for c in conns:
                c.tick(cuts)
            stop.wait(max(0.0, 1.0 - (time.monotonic() - t)))
        for c in conns:
            if c.s:
                c.s.close()

    th = threading.Thread(target=attack)
    th.start()
    time.sleep(2)  # every attacker connected and trickling
    lat, failed, t_end = [], 0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        t = time.monotonic()
        try:
            st, j = get_json(P, "/healthz", timeout=5)
        except OSError:
            st = 0
        if st == 200:
            lat.append(time.monotonic() - t)
        else:
            failed += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    try:
        st, status = get_json(P, "/api/v1/status", timeout=5)
    except OSError:
        status = {}
    stop.set()
    th.join()
    lat.sort()
    cuts.sort()
    n = len(lat) + failed
    print("figures: %d trickling connections for %.0f s: /healthz answered %d of %d, "
          "p50 %.1f ms, max %.1f ms; attacker connections cut %d times, after %.1f s on median"
          % (nconns, seconds, len(lat), n, 1000 * lat[len(lat) // 2] if lat else -1,
             1000 * lat[-1] if lat else -1, len(cuts), cuts[len(cuts) // 2] if cuts else -1))
    conns = status.get("http", {}).get("connections")
    print("figures: status http.connections %s" % (conns,))
    check(failed == 0 and n >= seconds - 2, "%d tricklers: /healthz from the attacked address "
          "answered every time (%d of %d)" % (nconns, len(lat), n))
    check(lat and lat[-1] < 1.0, "... within a second (max %.0f ms)"
          % (1000 * lat[-1] if lat else -1))
    return cuts, conns or {}


# the attack: over the per-address limit (128), new connections evict the oldest
cuts, conns = run_attack(ATTACK, SECONDS)
check(conns.get("evicted", 0) > 0 and conns.get("open", 999) <= 128,
      "the address stays at its limit by evicting its oldest waiting connections")
# under the limit: the head deadline (10 s) cuts them
cuts, conns = run_attack(100, 14)
check(cuts and 9.5 < cuts[len(cuts) // 2] < 12.5 and conns.get("head_timeouts", 0) >= 100,
      "100 tricklers are cut by the 10 s head deadline (median %.1f s, %s)"
      % (cuts[len(cuts) // 2] if cuts else -1, conns.get("head_timeouts")))
srv.stop()
finish()
