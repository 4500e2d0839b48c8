"""Issue 12 item 14: a hostile rate-limit reset header (1e12, 5e9, inf, nan, 1e400) never raises, never makes
a bridge wait more than a day (MAX_WAIT_SECONDS, as for Retry-After), and never writes a non-JSON log line.
The 429s come from a real HTTP server on 127.0.0.1; the wait goes through the poll loop's own Event.wait."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from obs_bridges import log
from obs_bridges.core import SelfMetrics

from obs_bridges.httpclient import MAX_WAIT_SECONDS, ApiClient, ApiError, RateLimitState


class _Hostile(BaseHTTPRequestHandler):
    reset = "1e12"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b'{"message": "API rate limit exceeded"}'
        self.send_response(429)
        self.send_header("x-ratelimit-limit", "5000")
        self.send_header("x-ratelimit-remaining", "0")
        self.send_header("x-ratelimit-reset", type(self).reset)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("reset", ["1e12", "5e9", "inf", "-inf", "nan", "1e400", "99999999999999999999"])
def test_reset_header_gives_a_bounded_finite_wait(hostile, reset):
    _Hostile.reset = reset
    client = ApiClient("github", f"http://127.0.0.1:{hostile.server_address[1]}",
                       SelfMetrics("github", CollectorRegistry()), timeout=5, retries=0)
    with pytest.raises(ApiError) as e:
        client.request("GET", "/rate", "rate")
    ra = e.value.retry_after
    assert e.value.kind == "ratelimit" and ra is not None
    assert 0 < ra <= MAX_WAIT_SECONDS, ra
    # the poll loop waits with threading.Event.wait, which raises OverflowError past TIMEOUT_MAX
    assert ra <= threading.TIMEOUT_MAX
    rl = client.metrics.ratelimit
    assert rl.reset is None or rl.reset <= time.time() + MAX_WAIT_SECONDS + 1


@pytest.mark.parametrize("reset", ["1e12", "inf", "nan", "-5", "1e400"])
def test_rate_limit_state_reset_is_finite_and_capped(reset):
    st = RateLimitState()
    st.update({"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000", "x-ratelimit-reset": reset})
    assert st.reset is None or (st.reset == st.reset and st.reset <= time.time() + MAX_WAIT_SECONDS + 1)


def test_exporter_backoff_after_a_hostile_reset_is_waitable():
    """Exporter._failed turns the error into the poll thread's next wait: finite and at most a day."""
    from obs_bridges import core
    exp = core.Exporter.__new__(core.Exporter)  # only _failed's state, no threads or sockets
    exp.max_backoff, exp._logged_errors = 1800.0, {}
    exp.selfm = SelfMetrics("github", CollectorRegistry())
    exp.log = logging.getLogger("test")
    exp.settings = type("S", (), {"token": type("T", (), {"name": "GITHUB_TOKEN"})()})()
    u = type("U", (), {"ok": True, "failures": 0, "last_error": None, "interval": 60.0, "name": "runs"})()
    for ra in (1e12, float("inf"), 5e9):
        delay = exp._failed(u, "ratelimit", "rate limited", ra)
        assert 0 < delay <= MAX_WAIT_SECONDS <= threading.TIMEOUT_MAX, delay


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), {"nested": [float("inf")]}])
def test_log_lines_stay_valid_json(value):
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(log.JsonFormatter("test"))
    lg = logging.getLogger(f"test-json-{id(value)}")
    lg.addHandler(h)
    lg.propagate = False
    lg.warning("rate limited", extra=log.kv(wait_seconds=value))
    line = buf.getvalue().strip()
    doc = json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {line}"))
    assert "wait_seconds" in doc
