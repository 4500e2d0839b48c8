"""GitHub webhook deliveries (issue 15, part 1), the pure core: signature check, redelivery dedupe and the
parse of workflow_run / workflow_job payloads into the poller's own Run and Job records, so both paths
count with the same natural keys (run id + attempt, job id). No I/O here; the HTTP receiver builds on it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs

from obs_bridges.github_api import Job, Run, parse_jobs, parse_run
from obs_bridges.parsing import ParseError, num, obj, s

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"
_PREFIX = "sha256="
_SHA256_HEX_LEN = 64
# GitHub caps a delivery's payload at 25 MB; workflow_run/_job payloads are tens of KB, so 1 MiB is roomy
# and still bounds what an unauthenticated sender can make the receiver read before the signature fails.
MAX_BODY_BYTES = 1024 * 1024
# Redeliveries (manual or automatic) arrive within days: remember ids for 3 days, at most this many.
DELIVERY_TTL_SECONDS = 3 * 24 * 3600
MAX_REMEMBERED_DELIVERIES = 100_000


def signature(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body` under `secret`."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only for the exact signature of the raw body; compared in constant time. An empty secret
    never verifies (a receiver without its secret must refuse everything, not accept everything)."""
    if not secret or not header:
        return False
    given = header.strip().encode("ascii", "replace")
    expected = signature(secret, body).encode("ascii")
    # compare_digest on equal-length bytes; a wrong length is refused after a compare all the same, so
    # timing does not tell a near miss from garbage.
    if len(given) != len(_PREFIX) + _SHA256_HEX_LEN:
        hmac.compare_digest(expected, expected)
        return False
    return hmac.compare_digest(given.lower(), expected)


class DeliveryLog:
    """Delivery ids seen recently (X-GitHub-Delivery), bounded in time and count, thread-safe."""

    def __init__(self, ttl: float = DELIVERY_TTL_SECONDS, capacity: int = MAX_REMEMBERED_DELIVERIES,
                 clock: Callable[[], float] = time.time):
        self.ttl, self.capacity, self.clock = ttl, capacity, clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str) -> bool:
        """Record the id; False if it was seen within the TTL (a redelivery: do not count it again)."""
        now = self.clock()
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at < self.ttl and len(self._seen) < self.capacity:
                    break
                del self._seen[oldest]
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            return True

    def forget(self, delivery_id: str) -> None:
        """Drop an id whose processing failed, so that GitHub's redelivery of it is processed."""
        with self._lock:
            self._seen.pop(delivery_id, None)

    def __len__(self) -> int:
        return len(self._seen)


def decode_body(content_type: str | None, body: bytes) -> Any:
    """The JSON payload of a delivery in either of GitHub's content types: application/json, or
    application/x-www-form-urlencoded with the JSON in the ``payload`` field. ParseError otherwise."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if ctype == "application/json":
            return json.loads(body.decode("utf-8"))
        if ctype == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=8)
            if len(fields.get("payload", ())) != 1:
                raise ParseError("a form-encoded delivery must have exactly one payload field")
            return json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ParseError(f"the {ctype} body does not decode: {type(e).__name__}") from None
    raise ParseError(f"content type {ctype[:60]!r} is not a GitHub delivery's (application/json or "
                     "application/x-www-form-urlencoded; set the webhook's content type to application/json)")


@dataclass(frozen=True)
class Ping:
    hook_id: int | None


@dataclass(frozen=True)
class RunEvent:
    action: str
    repo: str
    run: Run


@dataclass(frozen=True)
class JobEvent:
    action: str
    repo: str
    run_id: int
    attempt: int
    job_id: int
    job: Job
    workflow_name: str = ""


@dataclass(frozen=True)
class Ignored:
    event: str


Delivery = Ping | RunEvent | JobEvent | Ignored


def _repo(payload: dict) -> str:
    repo = obj(payload.get("repository"), "repository")
    return s(repo.get("full_name"), "repository.full_name")


def parse_delivery(event: str, payload: Any) -> Delivery:
    """The delivery's meaning; ParseError (never anything else) for a payload that is not GitHub's shape."""
    if event == "ping":
        p = obj(payload, "ping payload")
        hook = num(p.get("hook_id"), "hook_id", optional=True)
        return Ping(int(hook) if hook is not None else None)
    if event not in ("workflow_run", "workflow_job"):
        return Ignored(event[:40])
    p = obj(payload, f"{event} payload")
    action = s(p.get("action"), "action")
    if event == "workflow_run":
        return RunEvent(action, _repo(p), parse_run(p.get("workflow_run"), "workflow_run"))
    j = obj(p.get("workflow_job"), "workflow_job")
    job = parse_jobs({"jobs": [j]})[0]
    attempt = num(j.get("run_attempt"), "workflow_job.run_attempt", optional=True)
    return JobEvent(action, _repo(p), int(num(j.get("run_id"), "workflow_job.run_id")),
                    int(attempt) if attempt is not None else 1, int(num(j.get("id"), "workflow_job.id")), job,
                    s(j.get("workflow_name"), "workflow_job.workflow_name", optional=True) or "")


__all__ = ["DeliveryLog", "decode_body", "Ignored", "JobEvent", "ParseError", "Ping", "RunEvent", "parse_delivery",
           "signature", "verify_signature"]
