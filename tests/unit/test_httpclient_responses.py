"""ApiClient's reading of a response's status and headers on an injected clock: 401/403 (auth) versus a
rate-limited 403/429 (ratelimit, with the wait computed from Retry-After or the reset), and the
rate-limit gauges. No sockets (the recording transport of test_httpclient_links)."""

import email.utils

import pytest
from prometheus_client import CollectorRegistry

from obs_bridges.core import SelfMetrics
from obs_bridges.httpclient import ApiClient, ApiError
from tests.support.clock import T0, FakeClock
from tests.support.fakehttp import Transport

BASE = "https://api.example.test"


def client(status, headers, body=b"{}", clock=None):
    clock = clock or FakeClock()
    sm = SelfMetrics("unit", CollectorRegistry(), clock)
    c = ApiClient("unit", BASE, sm, retries=0, clock=clock, auth=lambda: {"Authorization": "Bearer t"})
    c.session.mount("https://", Transport({f"{BASE}/x": (status, headers, body)}))
    return c


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_token_is_auth(status):
    with pytest.raises(ApiError) as e:
        client(status, {}, b'{"message": "Bad credentials"}').request("GET", "/x", "x")
    assert e.value.kind == "auth" and e.value.status == status and e.value.retry_after is None


def test_a_403_with_rate_limit_signs_is_a_rate_limit_waiting_for_the_reset():
    clock = FakeClock()
    c = client(403, {"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000",
                     "x-ratelimit-reset": str(int(T0 + 900))}, clock=clock)
    clock.advance(300)
    with pytest.raises(ApiError) as e:
        c.request("GET", "/x", "x")
    assert e.value.kind == "ratelimit" and e.value.retry_after == 600.0
    rl = c.metrics.ratelimit
    assert (rl.remaining, rl.limit, rl.reset) == (0.0, 5000.0, T0 + 900)


def test_a_403_saying_rate_limit_in_its_body_is_a_rate_limit():
    with pytest.raises(ApiError) as e:
        client(403, {}, b'{"message": "API rate limit exceeded for user"}').request("GET", "/x", "x")
    assert e.value.kind == "ratelimit" and e.value.retry_after == 60.0


def test_a_429_retry_after_date_is_read_on_the_injected_clock():
    clock = FakeClock()
    c = client(429, {"Retry-After": email.utils.formatdate(T0 + 120, usegmt=True)}, clock=clock)
    clock.advance(20)
    with pytest.raises(ApiError) as e:
        c.request("GET", "/x", "x")
    assert e.value.kind == "ratelimit" and e.value.retry_after == 100.0


def test_a_5xx_passes_its_retry_after_on():
    with pytest.raises(ApiError) as e:
        client(503, {"Retry-After": "17"}).request("GET", "/x", "x")
    assert e.value.kind == "http" and e.value.retry_after == 17.0
