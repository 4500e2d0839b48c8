"""Retry-After and rate-limit reset handling against an injected clock: parse_retry_after,
RateLimitState and ratelimit_wait (what a 429 or rate-limited 403 makes the poll loop wait)."""

import email.utils

import pytest

from obs_bridges import httpclient
from obs_bridges.httpclient import MAX_WAIT_SECONDS, RateLimitState, parse_retry_after, ratelimit_wait
from tests.support.clock import T0, FakeClock


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


@pytest.mark.parametrize("value, want", [
    ("0", 0.0), ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5),
    (str(10 * 86400), MAX_WAIT_SECONDS),  # a week: capped to a day
    ("-1", None), ("inf", None), ("nan", None), ("soon", None), ("", None), (None, None),
])
def test_parse_retry_after_seconds(value, want):
    assert parse_retry_after(value, T0) == want


def test_parse_retry_after_http_date_is_relative_to_the_given_now():
    assert parse_retry_after(http_date(T0 + 90), T0) == 90.0
    assert parse_retry_after(http_date(T0 + 90), T0 + 60) == 30.0
    assert parse_retry_after(http_date(T0 - 30), T0) == 0.0  # already past: no wait, never negative
    assert parse_retry_after(http_date(T0 + 5 * 86400), T0) == MAX_WAIT_SECONDS


def test_rate_limit_state_epoch_reset():
    st = RateLimitState(FakeClock())
    st.update({"x-ratelimit-remaining": "12", "x-ratelimit-limit": "5000", "x-ratelimit-reset": str(T0 + 600)})
    assert (st.remaining, st.limit, st.reset) == (12.0, 5000.0, T0 + 600)


def test_rate_limit_state_relative_reset_uses_the_clock():
    clock = FakeClock()
    st = RateLimitState(clock)
    st.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"})
    assert st.reset == T0 + 30
    clock.advance(100)
    st.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "-5"})  # negative: now
    assert st.reset == T0 + 100


@pytest.mark.parametrize("reset", ["1e12", "inf", "nan", "1e400", str(T0 + 3 * 86400)])
def test_rate_limit_state_reset_is_finite_and_at_most_a_day_ahead(reset):
    clock = FakeClock()
    st = RateLimitState(clock)
    st.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    assert st.reset is None or st.reset <= T0 + MAX_WAIT_SECONDS
    if reset in ("1e12", str(T0 + 3 * 86400)):
        assert st.reset == T0 + MAX_WAIT_SECONDS


def test_rate_limit_state_ignores_responses_without_remaining():
    st = RateLimitState(FakeClock())
    st.update({"x-ratelimit-remaining": "3", "x-ratelimit-limit": "10"})
    st.update({"x-ratelimit-limit": "99", "x-ratelimit-reset": "5"})
    assert (st.remaining, st.limit, st.reset) == (3.0, 10.0, None)


def test_ratelimit_wait_prefers_retry_after():
    assert ratelimit_wait({"Retry-After": "42", "x-ratelimit-reset": str(T0 + 600)}, T0) == 42.0
    assert ratelimit_wait({"Retry-After": http_date(T0 + 20)}, T0) == 20.0


def test_ratelimit_wait_from_an_epoch_reset():
    assert ratelimit_wait({"x-ratelimit-reset": str(T0 + 600)}, T0) == 600.0
    # a reset already past still waits a little: the window may not have turned yet
    assert ratelimit_wait({"x-ratelimit-reset": str(T0 - 600)}, T0) == httpclient.MIN_RATELIMIT_WAIT
    assert ratelimit_wait({"x-ratelimit-reset": "1e12"}, T0) == MAX_WAIT_SECONDS


@pytest.mark.parametrize("headers", [{}, {"x-ratelimit-reset": "30"}, {"Retry-After": "later"},
                                     {"x-ratelimit-reset": "nan"}])
def test_ratelimit_wait_default(headers):
    # a small reset is relative (not an epoch) and gives no wait here: the default minute applies
    assert ratelimit_wait(headers, T0) == httpclient.DEFAULT_RATELIMIT_WAIT
