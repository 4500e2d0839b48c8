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
