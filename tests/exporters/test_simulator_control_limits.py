"""Issue 12 item 17 (control-parameter part): every number the simulator's control API takes is checked
against a range; out of range, non-finite or of the wrong type is a 400 that names the parameter, and
the simulator keeps serving (`{"seconds": 1e300}` on /_control/advance used to run memory away)."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from obs_bridges.simulator import server as sim
from obs_bridges.simulator.world import World


@pytest.fixture(scope="module")
def url():
    srv = sim.make_server("127.0.0.1", 0, World(seed=42))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url: str, path: str, body) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


# json.dumps writes 1e300 as a number; Infinity/NaN as the non-standard constants Python's json reads back.
BAD = [
    ("/_control/advance", {"seconds": 1e300}, "seconds"),
    ("/_control/advance", {"seconds": -5}, "seconds"),
    ("/_control/advance", {"seconds": float("inf")}, "seconds"),
    ("/_control/advance", {"seconds": "10"}, "seconds"),
    ("/_control/rate", {"platform": "github", "per_hour": float("nan")}, "per_hour"),
    ("/_control/rate", {"platform": "github", "per_hour": 1e12}, "per_hour"),
    ("/_control/ratelimit", {"platform": "github", "limit": 1.5}, "limit"),
    ("/_control/ratelimit", {"platform": "github", "window": 0}, "window"),
    ("/_control/inject/github", {"count": 10**9}, "count"),
    ("/_control/inject/github", {"count": True}, "count"),
    ("/_control/inject/github", {"count": 1, "duration": 1e300}, "duration"),
    ("/_control/inject/vercel", {"count": 1, "spacing": -1}, "spacing"),
    ("/_control/faults", {"kind": "slow", "delay": 1e9}, "delay"),
    ("/_control/faults", {"kind": "http5xx", "status": 99999}, "status"),
]


@pytest.mark.parametrize("path,body,param", BAD, ids=[f"{p}:{k}" for p, _, k in BAD])
def test_out_of_range_is_a_400_naming_the_parameter(url, path, body, param):
    status, reply = post(url, path, body)
    assert status == 400, (status, reply)
    assert param in reply.get("message", ""), reply
    # still serving
    with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
        assert r.status == 200


def test_in_range_values_still_work(url):
    assert post(url, "/_control/advance", {"seconds": 60})[0] == 200
    assert post(url, "/_control/inject/github", {"count": 2, "conclusion": "success"})[0] == 200
    assert post(url, "/_control/ratelimit", {"platform": "github", "limit": 5000, "window": 3600})[0] == 200


def raw_post(url: str, path: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url + path, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("path,body", [
    ("/_control/advance", b'{"seconds": ' + b"9" * 400 + b"}"),
    ("/_control/inject/github", b'{"count": ' + b"9" * 400 + b"}"),
    ("/_control/advance", b"[" * 200_000 + b"]" * 200_000),
    ("/railway/graphql/v2", b'{"query": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
], ids=["400-digit seconds", "400-digit count", "deep control body", "deep GraphQL body"])
def test_huge_integers_and_deep_nesting_are_a_400(url, path, body):
    """Found by the attack script: a 400-digit integer (math.isfinite overflows) and deeply nested JSON
    (RecursionError) dropped the connection without an answer."""
    status, _ = raw_post(url, path, body)
    assert status == 400
    with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
        assert r.status == 200


def raw_exchange(url: str, data: bytes, timeout: float = 10) -> bytes:
    import socket
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out


def test_a_request_hidden_in_an_oversized_body_never_runs(url):
    """Found by the attack script: a body over the 10 MB limit was left unread and its bytes were parsed as
    the next requests on the connection, so a control request inside it ran."""
    before = post(url, "/_control/rate", {"platform": "vercel", "per_hour": 3})[1]["rates"]["vercel"]
    hidden = (b"POST /_control/rate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n"
              + b'{"platform": "vercel", "per_hour": 4321}'.ljust(40))
    head = b"POST /_control/advance HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n"
    out = raw_exchange(url, head + hidden + b"x" * 200_000)
    assert out.startswith(b"HTTP/1.1 413") and out.count(b"HTTP/1.1 ") == 1, out[:300]
    assert post(url, "/_control/rate", {"platform": "vercel", "per_hour": before})[1]["rates"]["vercel"] == before


@pytest.mark.parametrize("head,code", [
    (b"Content-Length: -5\r\n", b"400"), (b"Content-Length: 1e3\r\n", b"400"),
    (b"Transfer-Encoding: chunked\r\n", b"411"),
])
def test_odd_framing_is_refused_and_the_connection_closed(url, head, code):
    out = raw_exchange(url, b"POST /_control/advance HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n0\r\n\r\n"
                       b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 " + code) and out.count(b"HTTP/1.1 ") == 1, out[:300]


def test_an_unknown_platform_is_refused_and_not_stored(url):
    status, reply = post(url, "/_control/rate", {"platform": "nope", "per_hour": 1})
    assert status == 400 and "platform must be one of" in reply["message"]
    assert post(url, "/_control/advance", {"seconds": 1})[0] == 200  # the world still advances


def test_advance_is_capped_by_the_arrivals_it_would_create(url):
    assert post(url, "/_control/rate", {"platform": "github", "per_hour": 10_000})[0] == 200
    try:
        status, reply = post(url, "/_control/advance", {"seconds": 7 * 86400})
        assert status == 400 and "arrivals" in reply["message"] and "seconds" in reply["message"]
    finally:
        post(url, "/_control/rate", {"platform": "github", "per_hour": 30})
