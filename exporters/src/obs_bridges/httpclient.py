"""HTTP client on requests + urllib3 Retry: timeouts, retries with backoff and jitter,
Retry-After and rate-limit headers honoured, request accounting in self-metrics."""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from obs_bridges import __version__, config, log

USER_AGENT = f"obs-bridges/{__version__}"
RETRY_STATUSES = (500, 502, 503, 504)
# An x-ratelimit-reset above this is a Unix time (GitHub, Vercel: ~1.7e9); at or below it, seconds from
# now. 1e9 s is 31 years: no window is that long, and no reset that early (2001) is current.
EPOCH_THRESHOLD = 1e9
# Wait after a 429 (or a rate-limited 403) that says neither Retry-After nor a reset time: one minute,
# the shortest window the four APIs use.
DEFAULT_RATELIMIT_WAIT = 60.0
# A rate limit whose reset time is already past still waits this long: the window may not have turned yet.
MIN_RATELIMIT_WAIT = 1.0
# Conditional-request cache entries per client (oldest dropped first): enough for every first page of a
# few thousand repositories, bounded so that memory cannot grow with an upstream's URL space.
ETAG_CACHE_MAX = 5000
# Characters of an exception's text kept in an error message (after redaction).
ERROR_TEXT_MAX = 200
# Bytes asked of the socket per read of a body: the deadline and the size bound are checked between reads.
READ_CHUNK_BYTES = 65536
Clock = Callable[[], float]


class ApiError(Exception):
    """A failed upstream call. ``kind`` is one of: auth, ratelimit, http, network, timeout, parse, config,
    token_unreadable (core.require_secret)."""

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(log.redact(message))
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


# The longest an upstream's own header can make a bridge wait (Retry-After, rate-limit reset): a day.
MAX_WAIT_SECONDS = 24 * 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), at most MAX_WAIT_SECONDS."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
        if not math.isfinite(secs) or secs < 0:
            return None
        return min(secs, MAX_WAIT_SECONDS)
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    now = time.time() if now is None else now  # a caller with an injected clock passes now
    return max(0.0, min(dt.timestamp() - now, MAX_WAIT_SECONDS))


def _header_float(headers, *names) -> float | None:
    for n in names:
        v = headers.get(n)
        if v is not None:
            try:
                f = float(v)
            except ValueError:
                continue
            if math.isfinite(f):  # inf, nan and 1e400 (inf) are no number of seconds
                return f
    return None


class RateLimitState:
    """The last response's rate-limit headers; ``clock`` turns a relative reset into a Unix time."""

    def __init__(self, clock: Clock = time.time):
        self.clock = clock
        self.limit: float | None = None
        self.remaining: float | None = None
        self.reset: float | None = None  # unix seconds

    def update(self, headers) -> None:
        rem = _header_float(headers, "x-ratelimit-remaining")
        if rem is None:
            return
        self.remaining = rem
        self.limit = _header_float(headers, "x-ratelimit-limit")
        reset = _header_float(headers, "x-ratelimit-reset")
        if reset is not None:
            # epoch seconds (GitHub, Vercel) or, if small, seconds from now; never past MAX_WAIT_SECONDS
            now = self.clock()
            self.reset = min(reset if reset > EPOCH_THRESHOLD else now + max(reset, 0.0), now + MAX_WAIT_SECONDS)


def ratelimit_wait(headers, now: float) -> float:
    """Seconds a rate-limited response (429, or 403 with rate-limit signs) tells the poll loop to wait:
    Retry-After, else the time left to an epoch x-ratelimit-reset (at least MIN_RATELIMIT_WAIT), else
    DEFAULT_RATELIMIT_WAIT; never more than MAX_WAIT_SECONDS."""
    ra = parse_retry_after(headers.get("Retry-After"), now)
    if ra is not None:
        return ra
    reset = _header_float(headers, "x-ratelimit-reset")
    if reset is not None and reset > EPOCH_THRESHOLD:
        return min(max(MIN_RATELIMIT_WAIT, reset - now), MAX_WAIT_SECONDS)
    return DEFAULT_RATELIMIT_WAIT


# Inline retries of a 5xx or a connection failure: 0.5 s, 1 s, 2 s ... (+ up to 0.5 s jitter), at most 8 s,
# so that the retries of one request stay well inside a poll interval.
RETRY_BACKOFF_FACTOR = 0.5
RETRY_BACKOFF_MAX = 8.0
RETRY_BACKOFF_JITTER = 0.5


def make_retry(on_attempt: Callable[[int | None], None], total: int, clock: Clock = time.time) -> Retry:
    """urllib3 Retry that counts every attempt (``on_attempt(status or None)``), never waits inline longer
    than MAX_INLINE_WAIT and never retries a 429 (both handed to the poll loop instead). It overrides
    Retry's ``get_retry_after``, ``increment`` (with its private ``_pool``/``_stacktrace`` arguments) and
    ``RETRY_AFTER_STATUS_CODES``; tests/unit/test_httpclient_retry.py pins them to urllib3's names."""

    class CountingRetry(Retry):
        # Never sleep inline for long: a longer Retry-After is handed to the poll loop instead.
        MAX_INLINE_WAIT = 5.0

        def get_retry_after(self, response):
            v = super().get_retry_after(response)
            return None if v is None else min(v, self.MAX_INLINE_WAIT)

        # 429 is never retried inline: the poll loop waits for Retry-After (or the reset) instead.
        RETRY_AFTER_STATUS_CODES = frozenset({503})

        def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
            if response is not None:
                ra = parse_retry_after(response.headers.get("Retry-After"), clock())
                if ra is not None and ra > self.MAX_INLINE_WAIT:
                    # too long to wait inside a poll: hand the response back; the loop honours it
                    raise MaxRetryError(_pool, url, None)
            # Count every attempt exactly once: a retried one here, the last response by the caller,
            # a last connection failure here (the caller then sees an exception, not a response).
            try:
                nxt = super().increment(method, url, response, error, _pool, _stacktrace)
            except Exception:
                if response is None:
                    on_attempt(None)
                raise
            on_attempt(response.status if response is not None else None)
            return nxt

    return CountingRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=RETRY_BACKOFF_FACTOR,
        backoff_max=RETRY_BACKOFF_MAX,
        backoff_jitter=RETRY_BACKOFF_JITTER,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST", "HEAD"}),  # POST: read-only GraphQL queries
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=True,
    )


def limits(settings) -> dict:
    """ApiClient keyword arguments for a bridge's whole-response bounds (config.Common)."""
    return {"max_response_bytes": settings.http_max_response_bytes, "deadline": settings.http_deadline}


class ApiClient:
    """One client per upstream thread (a requests.Session is not shared across threads)."""

    def __init__(self, platform: str, base_url: str, selfmetrics, timeout: float = 10.0,
                 retries: int = 2, auth: Callable[[], dict] | None = None,
                 max_response_bytes: int = config.DEFAULT_MAX_RESPONSE_BYTES, deadline: float | None = None,
                 clock: Clock = time.time):
        self.platform = platform
        self.clock = clock  # wall time for Retry-After dates and rate-limit resets
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self._base_origin = (base.scheme, base.netloc)
        self.metrics = selfmetrics
        self.timeout = timeout
        self.auth = auth or (lambda: {})
        # Whole-response bounds against hostile or broken upstreams (issue 12): bytes after decompression
        # (a gzip bomb) and a total deadline for the body.
        self.max_response_bytes = max_response_bytes
        self.deadline = deadline if deadline is not None else max(30.0, 3 * timeout)
        self.session = requests.Session()
        self._endpoint = "unknown"
        retry = make_retry(self._count_retry, retries, clock)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        # conditional-request cache: url -> (etag, body bytes)
        self.etags: dict[str, tuple[str, bytes]] = {}
        self.use_etags = True

    def _count_retry(self, status: int | None) -> None:
        self.metrics.api_request(self._endpoint, str(status) if status else "error")

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            u = urlsplit(path_or_url)
            if (u.scheme, u.netloc) != self._base_origin:
                # never send the token to another host (e.g. a crafted Link header), nor in clear text
                # to the same host over http
                raise ApiError("parse", f"refusing to follow a link to another host for {self.platform}")
            return path_or_url
        if not path_or_url:
            return self.base_url
        return self.base_url + (path_or_url if path_or_url.startswith("/") else "/" + path_or_url)

    def _read_body(self, resp: requests.Response, endpoint: str) -> bytes:
        """The body, decompressed, within max_response_bytes and a total deadline of `deadline` seconds
        (the socket timeout alone restarts with every byte a trickling upstream sends)."""
        deadline = time.monotonic() + self.deadline
        chunks, size = [], 0
        try:
            while True:
                # read1: whatever arrived (at most one socket read), so the deadline is checked as a
                # trickle goes on; read(n) would wait for n bytes.
                chunk = resp.raw.read1(READ_CHUNK_BYTES, decode_content=True)
                if not chunk:  # end of the body
                    break
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ApiError("too_large", f"{self.platform} {endpoint}: response larger than "
                                   f"{self.max_response_bytes} bytes (HTTP_MAX_RESPONSE_BYTES)", resp.status_code)
                if time.monotonic() > deadline:
                    raise ApiError("timeout", f"{self.platform} {endpoint}: response not complete after "
                                   f"{self.deadline:.0f}s (HTTP_DEADLINE_SECONDS)", resp.status_code)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            resp.close()
            raise ApiError("network", f"{self.platform} {endpoint}: reading the response failed ({_short(e)})") from e
        except ApiError:
            resp.close()
            raise
        body = b"".join(chunks)
        resp._content = body  # so resp.text and resp.json() read what was read here
        return body

    def request(self, method: str, path_or_url: str, endpoint: str, *, params=None, json_body=None,
                conditional: bool = False, extra_headers: dict | None = None) -> tuple[requests.Response, bytes]:
        """Perform one call. Returns (response, body). A 304 returns the cached body.

        Raises ApiError for auth failures, rate limiting, 5xx after retries, network errors and timeouts.
        """
        url = self.url_for(path_or_url)
        headers = dict(self.auth())
        if extra_headers:
            headers.update(extra_headers)
        cache_key = None
        if conditional and self.use_etags:
            req = requests.Request(method, url, params=params).prepare()
            cache_key = req.url
            cached = self.etags.get(cache_key)
            if cached:
                headers["If-None-Match"] = cached[0]
        self._endpoint = endpoint
        try:
            resp = self.session.request(method, url, params=params, json=json_body, headers=headers,
                                        timeout=self.timeout, allow_redirects=False, stream=True)
            body = self._read_body(resp, endpoint)
        except requests.exceptions.Timeout as e:
            raise ApiError("timeout", f"{self.platform} {endpoint}: timed out after {self.timeout}s") from e
        except requests.exceptions.RetryError as e:
            raise ApiError("http", f"{self.platform} {endpoint}: gave up after retries ({_short(e)})") from e
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as e:
            raise ApiError("network", f"{self.platform} {endpoint}: connection failed ({_short(e)})") from e
        except requests.exceptions.RequestException as e:
            raise ApiError("network", f"{self.platform} {endpoint}: request failed ({_short(e)})") from e
        code = resp.status_code
        self.metrics.api_request(endpoint, str(code))
        self.metrics.ratelimit.update(resp.headers)
        if code == 304 and cache_key and cache_key in self.etags:
            return resp, self.etags[cache_key][1]
        if code == 429 or (code == 403 and _is_ratelimited(resp)):
            ra = ratelimit_wait(resp.headers, self.clock())
            raise ApiError("ratelimit", f"{self.platform} {endpoint}: rate limited (HTTP {code}), "
                           f"waiting {ra:.0f}s", code, ra)
        if code in (401, 403):
            raise ApiError("auth", f"{self.platform} {endpoint}: HTTP {code}, the token was rejected", code)
        if code >= 500:
            raise ApiError("http", f"{self.platform} {endpoint}: HTTP {code} after retries", code,
                           parse_retry_after(resp.headers.get("Retry-After"), self.clock()))
        if code >= 400:
            raise ApiError("http", f"{self.platform} {endpoint}: HTTP {code}", code)
        if code != 200:
            raise ApiError("http", f"{self.platform} {endpoint}: unexpected HTTP {code}", code)
        if cache_key:
            etag = resp.headers.get("ETag")
            if etag:
                self.etags[cache_key] = (etag, body)
                if len(self.etags) > ETAG_CACHE_MAX:
                    self.etags.pop(next(iter(self.etags)))
        return resp, body

    def get_json(self, path_or_url: str, endpoint: str, **kw) -> tuple[Any, requests.Response]:
        resp, body = self.request("GET", path_or_url, endpoint, **kw)
        return decode_json(body, self.platform, endpoint), resp


def decode_json(body: bytes, platform: str, endpoint: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError("parse", f"{platform} {endpoint}: response is not valid JSON ({len(body)} bytes)") from e


def _is_ratelimited(resp) -> bool:
    if resp.headers.get("x-ratelimit-remaining") == "0":
        return True
    if resp.headers.get("Retry-After"):
        return True
    try:
        return "rate limit" in resp.text.lower()
    except Exception:  # noqa: BLE001 - an undecodable body is simply not a rate-limit message
        return False


def _short(e: Exception) -> str:
    s = str(e)
    return log.redact(s[:ERROR_TEXT_MAX])


def next_link(link_header: str | None) -> str | None:
    """The rel="next" URL from an RFC 8288 Link header, or None."""
    if not link_header:
        return None
    for part in link_header.split(","):
        segs = part.strip().split(";")
        if len(segs) < 2:
            continue
        url = segs[0].strip()
        if not (url.startswith("<") and url.endswith(">")):
            continue
        for p in segs[1:]:
            p = p.strip().replace(" ", "")
            if p in ('rel="next"', "rel=next"):
                return url[1:-1]
    return None


_ = urljoin  # re-exported for modules that resolve relative links
