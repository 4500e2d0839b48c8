"""Issue 12 items 7-9, the demo notification sink (alertmanager/webhook_sink.py) against hostile clients on
127.0.0.1: a 4 MB body of empty alerts keeps a bounded record and /notifications stays small; wrong JSON
types and deep nesting get 400 (no traceback, connection answered); a body that declares 4 MB and sends
1 byte is dropped within the read deadline; connections beyond the cap are closed, threads stay bounded."""
from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.request

import pytest
import webhook_sink as sink  # alertmanager/, on pytest.ini's pythonpath

from tests.support.wait import wait_for



@pytest.fixture
def url():
    srv = sink.serve("127.0.0.1", 0, keep=500, keep_bytes=2 * 1024 * 1024, read_timeout=1.0, max_connections=8)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url + "/ops", data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def notifications(url: str) -> bytes:
    with urllib.request.urlopen(url + "/notifications", timeout=30) as r:
        return r.read()


def test_a_flood_of_empty_alerts_is_bounded(url):
    body = json.dumps({"receiver": "ops", "alerts": [{}] * 400_000}).encode()
    assert len(body) > 1_000_000
    for _ in range(3):
        assert post(url, body) == 200
    raw = notifications(url)
    recs = json.loads(raw)
    assert len(raw) < 200_000, f"/notifications returned {len(raw)} bytes"
    assert all(len(r["alerts"]) <= sink.MAX_ALERTS and r["alerts_dropped"] == 400_000 - sink.MAX_ALERTS for r in recs)


def test_kept_bytes_are_bounded():
    srv = sink.serve("127.0.0.1", 0, keep=500, keep_bytes=100_000, read_timeout=1.0, max_connections=8)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        big = "x" * 50_000  # each text field is cut to MAX_FIELD characters
        payload = {"receiver": "ops", "alerts": [{"labels": {f"l{i}": big for i in range(5)}} for _ in range(5)]}
        for _ in range(30):
            assert post(url, json.dumps(payload).encode()) == 200
        recs = json.loads(notifications(url))
        assert 0 < len(recs) < 30 and recs[-1]["seq"] == 30, [r["seq"] for r in recs]
        assert len(json.dumps(recs)) <= 100_000 + 60_000
        assert all(len(v) <= sink.MAX_FIELD for r in recs for a in r["alerts"] for v in a["labels"].values())
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("body", [
    b'{"alerts": "x"}', b'{"alerts": [1]}', b'{"alerts": [{"labels": [1, 2]}]}',
    b'{"alerts": [{"annotations": 5}]}', b'{"alerts": [{"labels": {"a": {"b": 1}}}]}', b'{"commonLabels": []}',
    b'{"truncatedAlerts": "many"}', b"[1, 2]", b"[" * 200_000 + b"]" * 200_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
], ids=["alerts-str", "alert-int", "labels-list", "annotations-int", "label-object", "commonLabels-list",
        "truncated-str", "top-level-list", "deep-list", "deep-object"])
def test_wrong_types_and_deep_nesting_are_400(url, body):
    assert post(url, body) == 400
    assert post(url, b'{"receiver": "ops", "alerts": [{"status": "firing", "labels": {"alertname": "X"}}]}') == 200


def test_a_body_that_never_arrives_is_dropped(url):
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /ops HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n{")
    t0 = time.monotonic()
    try:
        data = s.recv(1024)  # the server closes (or answers) instead of waiting for the rest
    except socket.timeout:
        pytest.fail("the sink kept waiting for a body that never came")
    finally:
        s.close()
    assert time.monotonic() - t0 < 8, data
    assert notifications(url) == b"[]"


def test_connections_beyond_the_cap_are_closed(url):
    port = int(url.rsplit(":", 1)[1])
    before = threading.active_count()
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
    try:
        # every connection has been dealt with once the 32 past the cap are closed (EOF at our end)
        wait_for(lambda: sum(map(closed_by_peer, held)) >= 40 - 8, 10, 0.02, "the connections past the cap closed")
        assert threading.active_count() - before <= 8 + 2, "a thread per connection beyond the cap"
    finally:
        for s in held:
            s.close()
    # once they are gone the sink serves again
    assert json.loads(wait_for(lambda: notifications(url), 10, 0.2, "the sink to serve again")) == []


def closed_by_peer(s: socket.socket) -> bool:
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset
        return True
