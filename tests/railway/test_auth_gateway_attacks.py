"""Issue 12 items 1-6: the auth gateway (scripts/railway/auth_gateway.py) against hostile clients, run as a
subprocess on 127.0.0.1 (in-process only where a test must count calls). Clients use many loopback
source addresses (127.0.x.y), so "another client" is another address to the gateway. The framing corpus
and the log probes are those of the attack script (scripts/attack/gateway.py). Every wait is bounded."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from scripts.attack import gateway as attack
from tests.e2e.smoke import poll
from tests.railway.test_auth_gateway import (GOOD, PASSWORD, USER, WRONG, Echo, _module, basic, gateway_env,
                                             run_gateway)

BAD = {"Authorization": basic(USER, WRONG)}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class GatewayView:
    """The attack script's view of a gateway started by run_gateway."""

    def __init__(self, g):
        self.g, self.port = g, g.port

    def records(self) -> list[dict]:
        return self.g.lines()

    def reset_peak(self) -> None:
        pass

    def peak_mb(self) -> float:
        return peak_rss_mb(self.g.proc.pid)


@pytest.fixture(scope="module")
def upstream():
    e = Echo()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def gw(upstream, tmp_path_factory):
    """One gateway for the cases that judge single requests (framing, logs)."""
    with run_gateway(tmp_path_factory.mktemp("gw-attacks"), gateway_env(f"http://127.0.0.1:{upstream.port}")) as g:
        yield g


def status_from(port: int, method: str, path: str, headers: dict | None = None, source: str = "127.0.0.1",
                timeout: float = 5) -> int:
    return attack.request(port, method, path, {**(headers or {})}, source=source, timeout=timeout)


# ---------------------------------------------------------------------------------------------- 1. slow clients

def test_head_deadline_is_a_total_not_reset_per_byte(upstream, tmp_path):
    """A head trickled one byte every 0.2 s is cut off at GATEWAY_HEADER_TIMEOUT after connecting (408),
    not kept alive by each byte."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_HEADER_TIMEOUT="1.5")
    with run_gateway(tmp_path, env) as g:
        t = attack.Trickle(g.port, ["127.0.0.1"], interval=0.2)
        try:
            closed = t.wait_closed(4.5)
            c = t.conns[0]
        finally:
            t.close()
    assert closed, "the trickling client was still connected after 4.5 s (each byte reset the timeout)"
    assert 1.2 <= c["closed"] - c["opened"] <= 3.0, c["closed"] - c["opened"]
    assert c["got"].startswith(b"HTTP/1.1 408 "), c["got"][:100]


def test_slowloris_from_one_address_leaves_room_for_healthz_and_other_clients(upstream, tmp_path):
    """130 trickling connections from one address: it holds at most its per-address share (the rest are
    refused with 429), and /healthz and an authenticated client from other addresses are answered at once."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_HEADER_TIMEOUT="20")
    with run_gateway(tmp_path, env) as g:
        # The kernel hands connections over in the order they were made: the gateway has taken or
        # refused every trickling connection before it sees the two below.
        t = attack.Trickle(g.port, ["127.0.0.1"] * 130)
        try:
            assert status_from(g.port, "GET", "/healthz", source="127.0.0.2", timeout=3) == 200
            assert status_from(g.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=3) == 200
            poll("the refused trickling connections are closed",
                 lambda: sum(c["closed"] is not None for c in t.conns) >= 130 - 32 or None, 5, 0.05)
            held = t.open()  # the accepted ones stay open for GATEWAY_HEADER_TIMEOUT
            refused = [c["got"] for c in t.conns if c["closed"] is not None]
        finally:
            t.close()
    assert held == 32, held  # GATEWAY_MAX_CONNECTIONS_PER_CLIENT default
    assert any(r.startswith(b"HTTP/1.1 429 ") for r in refused), refused[:3]


def test_healthz_gets_a_reserved_slot_while_every_slot_is_held(upstream, tmp_path):
    """130 trickling connections from 130 addresses hold all 128 general slots: /healthz is still
    answered (a reserved slot), anything else on a reserved slot is 503, and the slots come back."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_HEADER_TIMEOUT="20")
    with run_gateway(tmp_path, env) as g:
        t = attack.Trickle(g.port, attack.addresses(1, 130))  # taken in order, before the requests below
        try:
            t0 = time.monotonic()
            assert status_from(g.port, "GET", "/healthz", source="127.0.0.2", timeout=3) == 200
            assert time.monotonic() - t0 < 2
            assert status_from(g.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=3) == 503
            assert t.open() >= 128
        finally:
            t.close()
        poll("slots are free again", lambda: status_from(g.port, "GET", "/q", GOOD, source="127.0.0.3") == 200, 5, 0.1)


def test_idle_kept_alive_connections_yield_their_slots(upstream, tmp_path):
    """Clients that send one request (/healthz needs no password) and then idle on the kept-alive
    connection cannot hold the slots: idle connections give them up when slots run short."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_MAX_CONNECTIONS="16")
    with run_gateway(tmp_path, env) as g:
        socks = []
        try:
            for src in attack.addresses(3, 16):
                s = attack.connect(g.port, src, timeout=3)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
                socks.append(s)
            poll("an authenticated client gets a slot",
                 lambda: status_from(g.port, "GET", "/q", GOOD, source="127.0.0.3", timeout=2) == 200 or None, 2, 0.05)
        finally:
            for s in socks:
                s.close()


# ---------------------------------------------------------------------------------------------- 2. header memory

def test_header_section_is_capped_before_authentication(gw):
    """12 KiB of headers without credentials: 431 and closed, before authentication is even tried; 7 KiB
    is still a normal request (401 here)."""
    fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 4096) for i in range(3))
    big = b"GET /x HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    raw, closed = attack.exchange(gw.port, big)
    assert attack.statuses(raw) == [431] and closed, raw[:200]
    fits = b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 7000 + b"\r\n\r\n"
    raw, _ = attack.exchange(gw.port, fits)
    assert attack.statuses(raw) == [401], raw[:200]


def test_header_flood_memory_stays_flat(upstream, tmp_path):
    """20 connections at once, each sending 99 header lines of 64 KiB (130 MB in all) without
    credentials: each is answered 431, and the gateway's peak memory grows by less than 16 MB."""
    with run_gateway(tmp_path, gateway_env(f"http://127.0.0.1:{upstream.port}")) as g:
        before = peak_rss_mb(g.proc.pid)
        r = attack.header_flood(GatewayView(g), conns=20)
        after = peak_rss_mb(g.proc.pid)
    assert after - before < 16, f"peak RSS {before:.1f} -> {after:.1f} MB"
    assert "answers [431] (20 x 431)" in r["detail"], r


# ---------------------------------------------------------------------------------------------- 3. lockout

def test_spraying_from_many_addresses_does_not_lock_out_the_right_password(upstream, tmp_path):
    """Twelve addresses guess until each is refused, spending the shared budget: the right password from
    another address is still accepted; the sprayers stay refused, right password or not; a fresh address
    gets one guess at a time while the budget is spent."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_AUTH_FAILURE_BURST="3",
                      GATEWAY_AUTH_FAILURES_PER_MINUTE="0.5", GATEWAY_AUTH_GLOBAL_FAILURE_BURST="10",
                      GATEWAY_AUTH_GLOBAL_FAILURES_PER_MINUTE="0.5")
    with run_gateway(tmp_path, env) as g:
        for src in attack.addresses(5, 12):
            codes = [status_from(g.port, "GET", "/q", BAD, source=src) for _ in range(4)]
            assert codes[-1] == 429 and set(codes) <= {401, 429}, (src, codes)
        assert status_from(g.port, "GET", "/q", GOOD, source="127.0.0.3") == 200
        assert status_from(g.port, "GET", "/q", GOOD, source="127.0.6.1") == 200
        assert status_from(g.port, "GET", "/q", GOOD, source="127.0.5.1") == 429  # a guess is never confirmed
        assert [status_from(g.port, "GET", "/q", BAD, source="127.0.6.2") for _ in range(2)] == [401, 429]


def test_the_credential_is_checked_before_the_limiter_every_time(tmp_path):
    """Timing: the credential check runs for every request with credentials, refused by the limiter or
    not, so how long an answer takes never tells whether the limiter looked at the password."""
    mod = _module()
    cfg = mod.load_config({"GATEWAY_UPSTREAM": "http://127.0.0.1:9", "GATEWAY_USER": USER, "GATEWAY_PASSWORD": PASSWORD,
                           "GATEWAY_LISTEN_HOST": "127.0.0.1", "PORT": "0", "GATEWAY_AUTH_FAILURE_BURST": "2",
                           "GATEWAY_AUTH_FAILURES_PER_MINUTE": "0.5"})
    calls = []
    real = mod.check_credentials
    mod.check_credentials = lambda c, h: calls.append(h) or real(c, h)
    srv = mod.make_server(cfg)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        port = srv.server_address[1]
        codes = [status_from(port, "GET", "/q", h) for h in (BAD, BAD, BAD, GOOD, BAD)]
    finally:
        srv.shutdown()
        srv.server_close()
        mod.check_credentials = real
    assert codes == [401, 401, 429, 429, 429]
    assert len(calls) == 5, f"the credential was checked for {len(calls)} of 5 requests"


# ---------------------------------------------------------------------------------------------- 4. client address

def test_the_client_address_is_the_last_x_real_ip_value(upstream, tmp_path):
    """Behind Railway's edge: a client's own X-Real-IP (a line before the edge's, or the first entry of a
    list) is never the key; rotating it does not escape the per-client limit."""
    env = gateway_env(f"http://127.0.0.1:{upstream.port}", GATEWAY_CLIENT_IP_HEADER="X-Real-IP",
                      GATEWAY_AUTH_FAILURE_BURST="2", GATEWAY_AUTH_FAILURES_PER_MINUTE="0.5")
    with run_gateway(tmp_path, env) as g:
        two_lines = []
        for i in range(4):
            head = (f"GET /q HTTP/1.1\r\nHost: x\r\nX-Real-IP: 198.51.100.{i}\r\n"
                    f"Authorization: {BAD['Authorization']}\r\nX-Real-IP: 203.0.113.50\r\n"
                    "Connection: close\r\n\r\n").encode()
            two_lines += attack.statuses(attack.exchange(g.port, head)[0])
        listed = [status_from(g.port, "GET", "/q", {**BAD, "X-Real-IP": f"198.51.100.{i}, 203.0.113.51"})
                  for i in range(4)]
        assert status_from(g.port, "GET", "/q", {**GOOD, "X-Real-IP": "203.0.113.52"}) == 200
        keys = [r["client"] for r in g.lines()
                if r["msg"] in ("authentication failed", "too many failed logins: refused")]
    assert two_lines == [401, 401, 429, 429]
    assert listed == [401, 401, 429, 429]
    assert set(keys) == {"203.0.113.50", "203.0.113.51"}, keys


# ---------------------------------------------------------------------------------------------- 5. framing

CORPUS = attack.framing_corpus(GOOD["Authorization"])
FOLLOW = f"GET /followup HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD['Authorization']}\r\n\r\n".encode()


@pytest.mark.parametrize("data", [d for _, d in CORPUS], ids=[n for n, _ in CORPUS])
def test_malformed_framing_is_400_and_closed(gw, upstream, data):
    """With valid credentials and a valid request pipelined after it: one 400, the connection closed,
    nothing forwarded (neither the malformed request nor anything after it)."""
    n = len(upstream.requests)
    raw, closed = attack.exchange(gw.port, data + FOLLOW, timeout=4)
    assert attack.statuses(raw) == [400], raw[:300]
    assert closed, "the connection was kept open after a malformed request"
    assert [r["path"] for r in upstream.requests[n:]] == []


def test_a_well_formed_request_still_passes_after_the_corpus(gw, upstream):
    """The corpus is judged by the parser, not by a gateway that refuses everything: well-formed
    neighbours of its cases (a tab and obs-text in a value, chunked with an extension and a trailer, an
    empty line before the request line, HTTP/1.0 without Host) are forwarded, bodies intact."""
    a = f"Authorization: {GOOD['Authorization']}\r\nConnection: close\r\n".encode()
    chunked = b"Transfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    ok = [b"GET /ok?x=1 HTTP/1.1\r\nHost: x\r\n" + a + b"X-A: a\tb\xe9\r\n\r\n",
          b"POST /ok HTTP/1.1\r\nHost: x\r\n" + a + chunked,
          b"\r\nPOST /ok HTTP/1.1\r\nHost: x\r\n" + a + b"Content-Length: 5\r\n\r\nhello",
          b"GET /ok HTTP/1.0\r\n" + a + b"\r\n"]
    for data in ok:
        n = len(upstream.requests)
        raw, _ = attack.exchange(gw.port, data, timeout=3)
        assert attack.statuses(raw) == [200], (data, raw[:300])
        assert len(upstream.requests) == n + 1
    assert upstream.requests[-3]["body"] == b"hello" and upstream.requests[-2]["body"] == b"hello"


# ---------------------------------------------------------------------------------------------- 6. logs

def test_no_part_of_a_malformed_request_line_reaches_the_log(gw):
    """Request lines the base class would have quoted ("Bad request syntax ('GET /x?token=...')") get
    their answer, and the log has JSON lines with method and path only: no query string anywhere."""
    probes = attack.log_probes()
    before = len(gw.log().splitlines())
    answers = {name: attack.statuses(attack.exchange(gw.port, data, timeout=3)[0])[:1] for name, data, _ in probes}
    poll("the probes are logged", lambda: len(gw.log().splitlines()) >= before + len(probes) or None, 5, 0.05)
    assert attack.MARKER not in gw.log()  # the framing corpus carries it too
    lines = gw.log().splitlines()[before:]
    records = [json.loads(line) for line in lines]
    refused = [r for r in records if r["msg"] == "bad request: refused"]
    assert refused and all(set(r) <= {"ts", "level", "component", "logger", "msg", "status", "reason", "client", "method", "path"}
                           for r in refused), refused
    assert {r.get("path") for r in records if r.get("method")} == {"/probe"}, records
    assert answers == {name: [want] for name, _, want in probes}
