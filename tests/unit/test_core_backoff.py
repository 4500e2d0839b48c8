"""core.backoff_delay, Exporter._failed and Exporter.poll_once on an injected clock: the 401/403 backoff
(floor, doubling, cap), Retry-After, the unreadable-token fast retry, and every time read via the clock."""

import math

import pytest

from obs_bridges import config, core
from obs_bridges.httpclient import MAX_WAIT_SECONDS, ApiError
from tests.support.clock import FakeClock

LOW = lambda lo, hi: lo  # noqa: E731 - the jitter's lower bound
HIGH = lambda lo, hi: hi  # noqa: E731
MID = lambda lo, hi: (lo + hi) / 2  # noqa: E731 - jitter factor 1.0


class UnitExporter(core.Exporter):
    platform = "unit"


def make_exporter(clock):
    settings = config.Common("unit", "127.0.0.1", 0, "info", 1.0, "https://api.example.test",
                             config.FixedSecret("UNIT_TOKEN", "tok"), False)
    return UnitExporter(settings, clock=clock)


@pytest.mark.parametrize("kind", ["auth", "config"])
def test_auth_backoff_starts_at_the_floor_doubles_and_is_capped(kind):
    # a 10 s upstream whose token is rejected waits 60 s, 120 s, 240 s ... never more than max_backoff
    got = [core.backoff_delay(10.0, n, kind, None, 1800.0, MID) for n in range(1, 9)]
    assert got == [60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0, 1800.0]


def test_other_failures_back_off_from_the_interval():
    assert [core.backoff_delay(10.0, n, "network", None, 1800.0, MID) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    # an interval under a second backs off from one second
    assert core.backoff_delay(0.1, 1, "http", None, 1800.0, MID) == 1.0
    # the doubling stops after BACKOFF_MAX_DOUBLINGS: no overflow after many failures
    assert core.backoff_delay(1.0, 10_000, "http", None, math.inf, MID) == 2.0 ** core.BACKOFF_MAX_DOUBLINGS


def test_jitter_bounds():
    assert core.backoff_delay(100.0, 1, "http", None, 1800.0, LOW) == pytest.approx(80.0)
    assert core.backoff_delay(100.0, 1, "http", None, 1800.0, HIGH) == pytest.approx(120.0)
    # the jitter applies after the cap: a capped backoff is still spread
    assert core.backoff_delay(10.0, 20, "auth", None, 1800.0, HIGH) == pytest.approx(2160.0)


def test_ratelimit_waits_as_told_even_if_shorter_than_the_backoff():
    # a rate limit waits Retry-After plus slack, not the (longer) interval-based backoff
    assert core.backoff_delay(600.0, 3, "ratelimit", 5.0, 1800.0, LOW) == pytest.approx(5.0 + core.RETRY_AFTER_SLACK[0])
    # other errors with a Retry-After wait for whichever is longer
    assert core.backoff_delay(60.0, 1, "http", 300.0, 1800.0, LOW) == pytest.approx(300.05)
    assert core.backoff_delay(600.0, 1, "http", 5.0, 1800.0, LOW) == pytest.approx(480.0)


@pytest.mark.parametrize("retry_after", [1e12, math.inf, 5e9])
def test_a_hostile_retry_after_is_capped_to_a_day(retry_after):
    assert core.backoff_delay(60.0, 1, "ratelimit", retry_after, 1800.0, HIGH) == MAX_WAIT_SECONDS


def test_an_unreadable_token_file_is_rechecked_soon_whatever_the_failures():
    assert core.backoff_delay(60.0, 7, "token_unreadable", None, 1800.0, MID) == core.TOKEN_RETRY_SECONDS
    assert core.backoff_delay(2.0, 7, "token_unreadable", None, 1800.0, MID) == 2.0


@pytest.mark.parametrize("status", [401, 403])
def test_poll_once_backs_off_on_a_rejected_token_and_resets_on_success(status):
    clock = FakeClock()
    exp = make_exporter(clock)
    fail = [True]

    def poll():
        clock.advance(3.0)  # the poll takes 3 s of the injected clock
        if fail[0]:
            raise ApiError("auth", f"unit runs: HTTP {status}, the token was rejected", status)

    u = exp.add_upstream(core.Upstream("runs", 10.0, poll))
    delays = []
    for _ in range(8):
        start = clock()
        delays.append(exp.poll_once(u))
        assert u.last_attempt == start and u.last_duration == 3.0
    assert u.failures == 8 and not u.ok and u.last_success is None
    # 60 s floor, doubling, capped at max_backoff (each within the jitter)
    for n, d in enumerate(delays, 1):
        want = min(exp.max_backoff, 60.0 * 2 ** (n - 1))
        assert want * 0.8 <= d <= want * 1.2, (n, d)
    assert delays[-1] <= exp.max_backoff * 1.2
    assert exp.selfm.poll_errors.labels("runs", "auth")._value.get() == 8
    fail[0] = False
    assert exp.poll_once(u) == 10.0
    assert u.ok and u.failures == 0 and u.last_error is None
    assert u.last_success == clock()
    clock.advance(42.0)
    h = exp.health()["upstreams"]["runs"]
    assert h["last_success_age_seconds"] == 42.0 and h["consecutive_failures"] == 0


def test_poll_once_honours_retry_after_of_a_rate_limit():
    clock = FakeClock()
    exp = make_exporter(clock)

    def poll():
        raise ApiError("ratelimit", "rate limited", 429, retry_after=7.0)

    u = exp.add_upstream(core.Upstream("runs", 600.0, poll))
    d = exp.poll_once(u)
    assert 7.0 + core.RETRY_AFTER_SLACK[0] <= d <= 7.0 + core.RETRY_AFTER_SLACK[1]


def test_an_unexpected_exception_is_an_internal_failure_not_a_dead_loop():
    clock = FakeClock()
    exp = make_exporter(clock)

    def poll():
        raise KeyError("x" * 1000)

    u = exp.add_upstream(core.Upstream("runs", 10.0, poll))
    d = exp.poll_once(u)
    assert 8.0 <= d <= 12.0 and not u.ok
    assert u.last_error.startswith("KeyError: ") and len(u.last_error) <= len("KeyError: ") + 200
    assert exp.selfm.poll_errors.labels("runs", "internal")._value.get() == 1


def test_the_exporter_reads_time_only_from_its_clock():
    clock = FakeClock(1000.0)
    exp = make_exporter(clock)
    assert exp.started == 1000.0
    assert exp.selfm.ratelimit.clock is clock
    u = exp.add_upstream(core.Upstream("runs", 10.0, lambda: None))
    exp.poll_once(u)
    assert u.last_success == 1000.0 and u.last_duration == 0.0


def test_clock_is_keyword_only():
    with pytest.raises(TypeError):
        UnitExporter(make_exporter(FakeClock()).settings, FakeClock())


def test_a_collector_refusal_is_retried_within_a_minute_whatever_the_failures():
    from obs_bridges.core import COLLECTOR_RETRY_MAX_SECONDS, backoff_delay

    waits = [backoff_delay(30.0, n, "collector", None, 1800.0, rand=lambda a, b: b) for n in range(1, 12)]
    assert max(waits) == COLLECTOR_RETRY_MAX_SECONDS
    assert backoff_delay(30.0, 8, "network", None, 1800.0, rand=lambda a, b: b) > COLLECTOR_RETRY_MAX_SECONDS
