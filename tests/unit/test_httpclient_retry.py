"""The urllib3 Retry subclass of httpclient.make_retry, against the urllib3 names it overrides or passes.

The subclass overrides ``increment`` (passing urllib3's private ``_pool`` and ``_stacktrace`` on,
positionally), ``get_retry_after`` and ``RETRY_AFTER_STATUS_CODES``, and relies on ``Retry.new``
re-creating ``type(self)``. A urllib3 release that renames or reorders any of them must fail here, not
silently turn the counting or the 429 hand-off off."""

import email.utils
import inspect

import pytest
import urllib3
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError
from urllib3.util.retry import Retry

from obs_bridges import httpclient
from tests.support.clock import T0, FakeClock


def response(status, **headers):
    return urllib3.HTTPResponse(body=b"", headers=headers, status=status, preload_content=True)


def make(total=2, clock=None):
    seen = []
    r = httpclient.make_retry(seen.append, total, clock or FakeClock())
    return r, seen


def test_increment_signature_is_the_one_the_override_passes_positionally():
    params = list(inspect.signature(Retry.increment).parameters)
    assert params == ["self", "method", "url", "response", "error", "_pool", "_stacktrace"]
    r, _ = make()
    assert list(inspect.signature(type(r).increment).parameters) == params


def test_get_retry_after_signature():
    assert list(inspect.signature(Retry.get_retry_after).parameters) == ["self", "response"]


def test_init_takes_every_keyword_make_retry_passes():
    init = inspect.signature(Retry.__init__).parameters
    src = inspect.getsource(httpclient.make_retry)
    passed = {"total", "connect", "read", "status", "backoff_factor", "backoff_max", "backoff_jitter",
              "status_forcelist", "allowed_methods", "respect_retry_after_header", "raise_on_status",
              "raise_on_redirect"}
    for name in passed:
        assert f"{name}=" in src, name  # the list above is what make_retry passes
        assert name in init and init[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
    r, _ = make(total=3)
    assert (r.total, r.connect, r.read, r.status) == (3, 3, 3, 3)
    assert r.backoff_factor == httpclient.RETRY_BACKOFF_FACTOR and r.backoff_max == httpclient.RETRY_BACKOFF_MAX
    assert r.backoff_jitter == httpclient.RETRY_BACKOFF_JITTER
    assert set(r.status_forcelist) == set(httpclient.RETRY_STATUSES)
    assert set(r.allowed_methods) == {"GET", "POST", "HEAD"}
    assert r.raise_on_status is False and r.raise_on_redirect is True and r.respect_retry_after_header is True


def test_new_keeps_the_subclass_and_its_settings():
    assert "type(self)" in inspect.getsource(Retry.new)
    r, seen = make(total=2)
    n = r.new(total=1)
    assert type(n) is type(r) and n.total == 1 and n.backoff_jitter == httpclient.RETRY_BACKOFF_JITTER
    # the copy still counts into the same callback (the closure survives new())
    n.increment("GET", "/x", response=response(502))
    assert seen == [502]


def test_retry_after_status_codes_is_the_attribute_is_retry_reads():
    assert "RETRY_AFTER_STATUS_CODES" in inspect.getsource(Retry.is_retry)
    assert 429 in Retry.RETRY_AFTER_STATUS_CODES
    r, _ = make()
    assert r.RETRY_AFTER_STATUS_CODES == frozenset({503})
    # a 429 with Retry-After is not retried inline (the plain Retry would), a 503 with one is
    assert Retry(total=2).is_retry("GET", 429, has_retry_after=True)
    assert not r.is_retry("GET", 429, has_retry_after=True)
    assert r.is_retry("GET", 503, has_retry_after=True)
    assert not r.is_retry("DELETE", 503, has_retry_after=True)


def test_get_retry_after_is_capped_to_the_inline_wait():
    r, _ = make()
    assert r.get_retry_after(response(503, **{"Retry-After": "3"})) == 3
    assert r.get_retry_after(response(503, **{"Retry-After": "3600"})) == r.MAX_INLINE_WAIT
    assert r.get_retry_after(response(503)) is None


def test_a_retried_response_is_counted_once():
    r, seen = make(total=2)
    n = r.increment("GET", "/x", response=response(503, **{"Retry-After": "2"}))
    assert seen == [503] and n.total == 1


def test_a_long_retry_after_is_handed_to_the_poll_loop_uncounted():
    r, seen = make(total=2)
    with pytest.raises(MaxRetryError):
        r.increment("GET", "/x", response=response(503, **{"Retry-After": "30"}))
    assert seen == []  # the caller counts the response it gets back


def test_a_retry_after_date_is_read_on_the_injected_clock():
    clock = FakeClock()
    date = email.utils.formatdate(T0 + 30, usegmt=True)
    r, seen = make(total=2, clock=clock)
    with pytest.raises(MaxRetryError):  # 30 s from now: too long to wait inline
        r.increment("GET", "/x", response=response(503, **{"Retry-After": date}))
    clock.advance(27)  # now 3 s: waited inline
    r.increment("GET", "/x", response=response(503, **{"Retry-After": date}))
    assert seen == [503]


def test_connection_failures_are_counted_including_the_last_one():
    r, seen = make(total=1)
    err = ConnectTimeoutError("timed out")
    n = r.increment("GET", "/x", error=err)
    assert seen == [None]
    with pytest.raises(MaxRetryError):
        n.increment("GET", "/x", error=err)
    assert seen == [None, None]  # the caller then sees an exception, not a response
