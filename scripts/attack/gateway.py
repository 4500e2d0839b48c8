"""Attacks on the auth gateway (scripts/railway/auth_gateway.py; issue 12, items 1-6), on loopback only.

python -m scripts.attack.gateway starts the gateway (twice: as it runs off Railway, keyed by the TCP
peer, and as on Railway, keyed by X-Real-IP) in front of a recording upstream on 127.0.0.1, runs every
attack below bounded in count and time, and prints one JSON report (scripts/attack/README.md); exit 1
when an attack did not hold. Peak memory is the gateway's VmHWM, reset before each attack.

Clients come from many loopback addresses (127.0.x.y: Linux routes all of 127/8 to lo), so "another
client" really is another address to the gateway. The framing corpus and the log probes are also the
cases of tests/railway/test_auth_gateway_attacks.py.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import selectors
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scripts.attack._common import (ROOT, Service, addresses, connect, exchange, report, request, result,
                                    statuses)

GATEWAY = ROOT / "scripts" / "railway" / "auth_gateway.py"
USER = "attack"
PASSWORD = "attack-" + secrets.token_urlsafe(15)
MARKER = "qs" + secrets.token_hex(6)  # a query-string value that must never reach the log
HEADER_TIMEOUT = 3.0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------------------------------------- corpus

def framing_corpus(auth: str) -> list[tuple[str, bytes]]:
    """Malformed or ambiguous requests, each with valid credentials so framing alone is judged: every one
    must get 400 and a closed connection, and nothing may reach the upstream."""
    a = f"Authorization: {auth}\r\n".encode()
    get = b"GET /framing?k=" + MARKER.encode() + b" HTTP/1.1\r\nHost: x\r\n" + a
    post = b"POST /framing?k=" + MARKER.encode() + b" HTTP/1.1\r\nHost: x\r\n" + a
    te = post + b"Transfer-Encoding: chunked\r\n"
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"
    return [
        ("header line after a malformed one", get + b"this is no header\r\nX-After: 1\r\n\r\n"),
        ("content-length after a malformed line", post + b"X: y\r\nno colon\r\nContent-Length: %d\r\n\r\n"
         % len(smuggled) + smuggled),
        ("chunk size 0x5", te + b"\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        ("chunk size +5", te + b"\r\n+5\r\nhello\r\n0\r\n\r\n"),
        ("chunk size 5_0", te + b"\r\n5_0\r\n" + b"x" * 80 + b"\r\n0\r\n\r\n"),
        ("chunk size -0", te + b"\r\n-0\r\n\r\n"),
        ("chunk size with a space", te + b"\r\n5 \r\nhello\r\n0\r\n\r\n"),
        ("chunk size of 17 digits", te + b"\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("LF instead of CRLF after chunk data", te + b"\r\n5\r\nhello\n0\r\n\r\n"),
        ("a byte instead of CRLF after chunk data", te + b"\r\n5\r\nhelloX\n0\r\n\r\n"),
        ("malformed trailer", te + b"\r\n5\r\nhello\r\n0\r\nno colon\r\n\r\n"),
        ("Transfer-Encoding: chunked, identity", post + b"Transfer-Encoding: chunked, identity\r\n\r\n"
         b"5\r\nhello\r\n0\r\n\r\n"),
        ("two Transfer-Encoding lines", te + b"Transfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("Transfer-Encoding: xchunked", post + b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("Transfer-Encoding with Content-Length", te + b"Content-Length: 4\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("Transfer-Encoding on HTTP/1.0", te.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n0\r\n\r\n"),
        ("folded Transfer-Encoding", post + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
        ("folded Content-Length", post + b"Content-Length:\r\n\t5\r\n\r\nhello"),
        ("folded other header", get + b"X-Folded: a\r\n b\r\n\r\n"),
        ("space before the colon", post + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        ("bare CR in a header value", get + b"X-A: a\rb\r\n\r\n"),
        ("bare CR in the request line", b"GET /a\r HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
        ("bare LF line ends", b"GET /a HTTP/1.1\nHost: x\n" + a.replace(b"\r\n", b"\n") + b"\n"),
        ("NUL in a header value", get + b"X-A: a\x00b\r\n\r\n"),
        ("NUL in a header name", get + b"X-\x00A: b\r\n\r\n"),
        ("NUL in the request target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
        ("non-ASCII digit in Content-Length", post + b"Content-Length: \xb2\r\n\r\nhi"),
        ("fullwidth digit in Content-Length", post + "Content-Length: \uff15\r\n\r\nhello".encode()),
        ("Content-Length +5", post + b"Content-Length: +5\r\n\r\nhello"),
        ("Content-Length list 5, 5", post + b"Content-Length: 5, 5\r\n\r\nhello"),
        ("two equal Content-Length lines", post + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        ("two Host lines", get + b"Host: y\r\n\r\n"),
        ("no Host on HTTP/1.1", b"GET /a HTTP/1.1\r\n" + a + b"\r\n"),
        ("two Authorization lines", get + a + b"\r\n"),
        ("empty header name", get + b": x\r\n\r\n"),
        ("space in a header name", get + b"X A: b\r\n\r\n"),
        ("two spaces in the request line", b"GET  /a HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
        ("tab in the request line", b"GET\t/a HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
        ("raw non-ASCII in the target", b"GET /\xff HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
        ("absolute-form target", b"GET http://127.0.0.1/a HTTP/1.1\r\nHost: x\r\n" + a + b"\r\n"),
    ]


def log_probes() -> list[tuple[str, bytes, int]]:
    """Requests whose request line the base class would have quoted in its log, query string and all:
    (name, bytes, expected status). Each carries MARKER in its query."""
    q = f"/probe?token={MARKER}".encode()
    return [
        ("bad request syntax", b"GET " + q + b" extra HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("bad request version", b"GET " + q + b" HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
        ("bad version string", b"GET " + q + b" HTTP/1.x\r\nHost: x\r\n\r\n", 400),
        ("unsupported version", b"GET " + q + b" HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("unsupported method", b"BREW " + q + b" HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        ("request line too long", b"GET " + q + b"&" + b"p" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("HTTP/0.9 style", b"GET " + q + b"\r\n\r\n", 400),
        ("bad header after a good target", b"GET " + q + b" HTTP/1.1\r\nHost: x\r\nbad\r\n\r\n", 400),
        ("unauthenticated", b"GET " + q + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 401),
    ]


# ---------------------------------------------------------------------------------------------- plumbing

class Upstream:
    """A 127.0.0.1 upstream that records what reached it."""

    def __init__(self):
        self.requests: list[dict] = []
        seen = self.requests

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                seen.append({"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                             "body": body})
                out = b'{"ok":true}\n'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        class S(ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Gateway(Service):
    """The gateway as a subprocess on 127.0.0.1 with its log in a file."""

    def __init__(self, upstream_port: int, workdir: Path, **env: str):
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
                "GATEWAY_UPSTREAM": f"http://127.0.0.1:{upstream_port}", "GATEWAY_USER": USER,
                "GATEWAY_PASSWORD": PASSWORD, "GATEWAY_LISTEN_HOST": "127.0.0.1", "PORT": "0",
                "GATEWAY_HEADER_TIMEOUT": str(HEADER_TIMEOUT), **env}
        self.port = 0
        super().__init__([sys.executable, str(GATEWAY)], full,
                         workdir / f"gateway-{len(list(workdir.iterdir()))}.log", Gateway._listening, timeout=20)

    @staticmethod
    def _listening(svc: "Service") -> bool:
        for rec in svc.records():
            if rec.get("msg") == "auth gateway listening":
                svc.port = rec["port"]
        return bool(svc.port)


class Trickle:
    """Connections that send a request head one byte at a time and never finish it (slowloris). Records
    when the gateway closed each one and what it answered."""

    def __init__(self, port: int, sources: list[str], interval: float = 0.5):
        self.interval = interval
        self.sel = selectors.DefaultSelector()
        self.conns: list[dict] = []
        for src in sources:
            c = {"source": src, "opened": time.monotonic(), "closed": None, "got": b""}
            try:
                s = connect(port, src)
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
                s.setblocking(False)
                c["sock"] = s
                self.sel.register(s, selectors.EVENT_READ, c)
            except OSError:
                c["closed"] = c["opened"]
            self.conns.append(c)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _close(self, c: dict) -> None:
        if c["closed"] is None:
            c["closed"] = time.monotonic()
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(c["sock"])
            c["sock"].close()

    def _run(self):
        next_send = time.monotonic()
        while not self.stop.is_set() and self.open():
            for key, _ in self.sel.select(timeout=0.05):
                c = key.data
                try:
                    data = c["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                c["got"] += data
                if not data:
                    self._close(c)
            if time.monotonic() >= next_send:
                next_send += self.interval
                for c in self.conns:
                    if c["closed"] is None:
                        try:
                            c["sock"].send(b"a")
                        except BlockingIOError:
                            pass
                        except OSError:
                            self._close(c)

    def open(self) -> int:
        return sum(c["closed"] is None for c in self.conns)

    def wait_closed(self, deadline_s: float) -> bool:
        end = time.monotonic() + deadline_s
        while self.open() and time.monotonic() < end:
            time.sleep(0.05)
        return not self.open()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            if c["closed"] is None:
                self._close(c)
        self.sel.close()


# ---------------------------------------------------------------------------------------------- attacks

GOOD = {"Authorization": basic(USER, PASSWORD)}
BAD = {"Authorization": basic(USER, "wrong-" + PASSWORD)}


def slowloris_one_address(gw: Gateway) -> dict:
    """Item 1: 130 connections from one address trickle their heads; /healthz and another client get
    through at once, the trickler holds at most its per-address share, each trickle ends at the deadline."""
    gw.reset_peak()
    t = Trickle(gw.port, ["127.0.0.1"] * 130)  # accepted in order: all of them before the two requests below
    try:
        t0 = time.monotonic()
        health = request(gw.port, "GET", "/healthz", source="127.0.0.2", timeout=3)
        other = request(gw.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=3)
        took = time.monotonic() - t0
        end = time.monotonic() + 2
        while t.open() > 32 and time.monotonic() < end:  # the refused ones have been told so
            time.sleep(0.05)
        held_by_attacker = t.open()
        all_closed = t.wait_closed(HEADER_TIMEOUT + 3)
        longest = max((c["closed"] or time.monotonic()) - c["opened"] for c in t.conns)
        got_408 = sum(b" 408 " in c["got"][:20] for c in t.conns)
    finally:
        t.close()
    held = health == 200 and other == 200 and took < 3 and all_closed and longest < HEADER_TIMEOUT + 2
    return result("slowloris from one address", "130 connections from 127.0.0.1 sending one header byte per "
                  "0.5 s; /healthz from 127.0.0.2 and an authenticated GET from 127.0.0.3 meanwhile", held,
                  f"/healthz {health}, other client {other} after {took:.2f} s; the trickler held {held_by_attacker} "
                  f"connections (others refused), {got_408} answered 408, longest lived {longest:.1f} s "
                  f"(head deadline {HEADER_TIMEOUT} s)", gw.peak_mb())


def slowloris_many_addresses(gw: Gateway) -> dict:
    """Item 1: 130 trickling connections from 130 addresses take every general slot: /healthz still gets
    a reserved slot, and the slots are back for everyone after the head deadline."""
    gw.reset_peak()
    t = Trickle(gw.port, addresses(1, 130))
    try:
        t0 = time.monotonic()
        health = request(gw.port, "GET", "/healthz", source="127.0.0.2", timeout=3)
        took = time.monotonic() - t0
        all_closed = t.wait_closed(HEADER_TIMEOUT + 3)
        longest = max((c["closed"] or time.monotonic()) - c["opened"] for c in t.conns)
    finally:
        t.close()
    after = request(gw.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=3)
    held = health == 200 and took < 3 and all_closed and longest < HEADER_TIMEOUT + 2 and after == 200
    return result("slowloris from 130 addresses", "130 connections from 127.0.1.1-130, one header byte per 0.5 s, "
                  "then /healthz from 127.0.0.2 and an authenticated GET after the deadline", held,
                  f"/healthz {health} after {took:.2f} s (reserved slot); longest trickle {longest:.1f} s; "
                  f"authenticated GET afterwards {after}", gw.peak_mb())


def idle_hoarding(gw: Gateway) -> dict:
    """Item 1: 130 addresses each send one valid request (/healthz, no credentials needed) and then
    idle on the kept-alive connection: idle connections yield their slots when slots run short."""
    gw.reset_peak()
    socks = []
    try:
        for src in addresses(3, 130):
            try:
                s = connect(gw.port, src, timeout=3)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(4096)
                socks.append(s)
            except OSError:
                pass
        t0 = time.monotonic()
        status = 0
        while time.monotonic() - t0 < 5 and status != 200:
            status = request(gw.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=2)
        took = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    return result("idle keep-alive hoarding", "130 addresses each send GET /healthz and then idle on the "
                  "kept-alive connection; an authenticated GET from 127.0.0.3", status == 200 and took < 3,
                  f"authenticated GET {status} after {took:.2f} s", gw.peak_mb())


def header_flood(gw: Gateway, conns: int = 40, lines: int = 99, size: int = 64 * 1024 - 100) -> dict:
    """Item 2: unauthenticated connections send 99 header lines of 64 KiB each; answered 431 after the
    header cap, memory stays flat."""
    gw.reset_peak()
    before = len(gw.records())
    codes: list[int] = []

    def one(src: str):
        head = b"GET /flood HTTP/1.1\r\n" + b"".join(  # no Host: 99 lines is the most http.server takes
            b"X-Fill-%02d: %s\r\n" % (i, b"a" * size) for i in range(lines)) + b"\r\n"
        raw, _ = exchange(gw.port, head, src, timeout=10)
        codes.extend(statuses(raw) or [0])

    threads = [threading.Thread(target=one, args=(src,)) for src in addresses(4, conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    peak = gw.peak_mb()
    auth_seen = any(r.get("msg") == "authentication failed" for r in gw.records()[before:])
    held = codes.count(431) == conns and not auth_seen and peak is not None and peak < 64
    return result("header flood", f"{conns} unauthenticated connections x {lines} header lines of {size} bytes "
                  f"({conns * lines * size / 1e6:.0f} MB in all)", held,
                  f"answers {sorted(set(codes))} ({codes.count(431)} x 431), reached authentication: {auth_seen}; "
                  f"peak RSS {peak} MB", peak)


def login_spray(gw: Gateway) -> dict:
    """Item 3: 12 addresses guess until each is refused (spending the shared budget); the right password
    from another address is still accepted, and every sprayer ends up refused."""
    gw.reset_peak()
    sprayers = addresses(5, 12)
    guesses = 0
    refused = set()
    for src in sprayers:
        for _ in range(15):
            guesses += 1
            if request(gw.port, "GET", "/q", BAD, source=src) == 429:
                refused.add(src)
                break
    real = [request(gw.port, "GET", "/q", GOOD, source=src) for src in ("127.0.0.3", "127.0.6.1")]
    fresh_bad = [request(gw.port, "GET", "/q", BAD, source="127.0.6.2") for _ in range(2)]
    held = real == [200, 200] and len(refused) == len(sprayers) and fresh_bad == [401, 429]
    return result("login spraying", f"{guesses} wrong passwords from 12 addresses (127.0.5.1-12) until each got "
                  "429, then the right password from 127.0.0.3 and a fresh 127.0.6.1", held,
                  f"right password: {real}; sprayers refused: {len(refused)}/12; a fresh address guessing "
                  f"while the shared budget is spent: {fresh_bad}", gw.peak_mb())


def real_ip_spoofing(gw: Gateway) -> dict:
    """Item 4 (behind Railway's edge): a client sends X-Real-IP itself before the edge's value (a second
    line, or a comma list); the limiter keys on the edge's (last) value, so rotating the client's own
    value does not escape it."""
    gw.reset_peak()
    codes = []
    for i in range(14):
        raw, _ = exchange(gw.port, (f"GET /q HTTP/1.1\r\nHost: x\r\nX-Real-IP: 198.51.100.{i}\r\n"
                                    f"Authorization: {BAD['Authorization']}\r\nX-Real-IP: 203.0.113.50\r\n"
                                    "Connection: close\r\n\r\n").encode())
        codes += statuses(raw)[:1]
    listed = [request(gw.port, "GET", "/q", {**BAD, "X-Real-IP": f"198.51.100.{i}, 203.0.113.51"}) for i in range(14)]
    edge_client = request(gw.port, "GET", "/q", {**GOOD, "X-Real-IP": "203.0.113.99"})
    keyed = {r.get("client") for r in gw.records() if r.get("msg") == "authentication failed"}
    held = 429 in codes and 429 in listed and codes.index(429) <= 10 and edge_client == 200 \
        and keyed <= {"203.0.113.50", "203.0.113.51"}
    return result("X-Real-IP spoofing", "14 wrong passwords with a rotating client-sent X-Real-IP line before the "
                  "edge's, 14 with a rotating first entry of a comma list; then the right password from another "
                  "edge address", held, f"second line: {codes}; comma list: {listed}; other client {edge_client}; "
                  f"limiter keys seen {sorted(keyed)}", gw.peak_mb())


def framing(gw: Gateway, upstream: Upstream) -> dict:
    """Item 5: every case of the corpus (plus a valid request pipelined after it) gets one 400, the
    connection closed, and nothing reaches the upstream."""
    gw.reset_peak()
    follow = f"GET /followup HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD['Authorization']}\r\n\r\n".encode()
    failed = []
    cases = framing_corpus(GOOD["Authorization"])
    for name, data in cases:
        n = len(upstream.requests)
        raw, closed = exchange(gw.port, data + follow, timeout=4)
        got = statuses(raw)
        if got != [400] or not closed or len(upstream.requests) != n:
            failed.append(f"{name}: answers {got}, closed {closed}, reached upstream "
                          f"{[r['path'] for r in upstream.requests[n:]]}")
    return result("request framing", f"{len(cases)} malformed or ambiguous requests with valid credentials, "
                  "each followed by a valid pipelined request", not failed,
                  "; ".join(failed) or "every case: 400, connection closed, nothing forwarded", gw.peak_mb())


def log_leaks(gw: Gateway, other: Gateway) -> dict:
    """Item 6: requests the base class would have quoted (query string included) in its log, then the
    whole log of both gateways: every line JSON, no query string, no password."""
    gw.reset_peak()
    wrong, before = [], len(gw.records())
    for name, data, want in log_probes():
        raw, closed = exchange(gw.port, data, timeout=4)
        if statuses(raw)[:1] != [want]:
            wrong.append(f"{name}: {statuses(raw)} (want {want})")
    end = time.monotonic() + 3
    while len(gw.records()) < before + len(log_probes()) and time.monotonic() < end:  # a line per probe
        time.sleep(0.05)
    leaks, bad_lines, lines = [], 0, 0
    for g in (gw, other):
        for line in g.log_text().splitlines():
            lines += 1
            try:
                json.loads(line)
            except ValueError:
                bad_lines += 1
            for secret in (MARKER, PASSWORD, GOOD["Authorization"].split()[1]):
                if secret in line:
                    leaks.append(line[:160])
    held = not wrong and not leaks and not bad_lines
    return result("query strings in the log", f"{len(log_probes())} malformed request lines carrying a marked query "
                  f"string, then a scan of all {lines} log lines of this run", held,
                  f"wrong answers {wrong}; lines not JSON: {bad_lines}; leaking lines: {leaks[:3]}", gw.peak_mb())


def main() -> int:
    results = []
    upstream = Upstream()
    with tempfile.TemporaryDirectory(prefix="attack-gateway-") as tmp:
        direct = Gateway(upstream.port, Path(tmp))
        edge = Gateway(upstream.port, Path(tmp), GATEWAY_CLIENT_IP_HEADER="X-Real-IP")
        try:
            for attack in (slowloris_one_address, slowloris_many_addresses, idle_hoarding, header_flood, login_spray):
                results.append(attack(direct))
            results.append(real_ip_spoofing(edge))
            results.append(framing(direct, upstream))
            results.append(log_leaks(direct, edge))
        finally:
            direct.stop()
            edge.stop()
            upstream.stop()
    return report("gateway", results)


if __name__ == "__main__":
    sys.exit(main())
