"""GitHub webhook core (issue 15, part 1): signatures, redelivery dedupe, payload parsing."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_bridges import github_webhooks as wh
from obs_bridges.parsing import ParseError
from tests.support.clock import FakeClock

SECRET = b"whsec-unit-7f3a"
BODY = b'{"action":"completed"}'


def test_the_signature_is_githubs_hmac_sha256_of_the_raw_body():
    expected = "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert wh.signature(SECRET, BODY) == expected
    assert wh.verify_signature(SECRET, BODY, expected)
    assert wh.verify_signature(SECRET, BODY, expected.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize("header", [
    None, "", "sha256=", "sha1=" + "0" * 40, "sha256=" + "0" * 64, "sha256=" + "0" * 63,
    "sha256=" + "zz" * 32, wh.signature(b"another secret", BODY), wh.signature(SECRET, BODY + b" "),
    wh.signature(SECRET, BODY) + "00", "sha256=\u00e9" + "0" * 63,
])
def test_anything_but_the_exact_signature_is_refused(header):
    assert not wh.verify_signature(SECRET, BODY, header)


def test_an_empty_secret_verifies_nothing():
    assert not wh.verify_signature(b"", BODY, wh.signature(b"", BODY))


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(wh.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    wh.verify_signature(SECRET, BODY, wh.signature(SECRET, b"other"))
    wh.verify_signature(SECRET, BODY, "sha256=short")
    assert len(calls) == 2, "both the wrong signature and the wrong length go through compare_digest"


def test_a_redelivery_is_recognised_until_the_ttl_passes():
    clock = FakeClock()
    log = wh.DeliveryLog(ttl=3600, capacity=10, clock=clock)
    assert log.first_time("d-1") and log.first_time("d-2")
    assert not log.first_time("d-1")
    clock.advance(3599)
    assert not log.first_time("d-2")
    clock.advance(2)
    assert log.first_time("d-1"), "after the TTL the id is forgotten"


def test_the_log_is_bounded_and_forgets_the_oldest_first():
    log = wh.DeliveryLog(ttl=10**9, capacity=3, clock=FakeClock())
    for i in range(5):
        assert log.first_time(f"d-{i}")
    assert len(log) == 3
    assert not log.first_time("d-4") and not log.first_time("d-3")
    assert log.first_time("d-0"), "the oldest ids were evicted"


RUN = {"id": 42, "run_attempt": 2, "workflow_id": 7, "name": "CI", "path": ".github/workflows/ci.yml",
       "head_branch": "main", "event": "push", "status": "completed", "conclusion": "failure",
       "created_at": "2026-11-29T10:00:00Z", "run_started_at": "2026-11-29T10:00:05Z",
       "updated_at": "2026-11-29T10:03:00Z"}
JOB = {"id": 9001, "run_id": 42, "run_attempt": 2, "name": "test (3.12)", "status": "completed",
       "conclusion": "success", "created_at": "2026-11-29T10:00:01Z", "started_at": "2026-11-29T10:00:10Z",
       "completed_at": "2026-11-29T10:02:00Z", "labels": ["ubuntu-latest"]}
REPO = {"full_name": "acme/api"}


def test_workflow_run_parses_to_the_pollers_run_record():
    d = wh.parse_delivery("workflow_run", {"action": "completed", "workflow_run": RUN, "repository": REPO})
    assert isinstance(d, wh.RunEvent) and d.action == "completed" and d.repo == "acme/api"
    assert (d.run.id, d.run.attempt, d.run.conclusion, d.run.branch) == (42, 2, "failure", "main")
    assert d.run.updated - d.run.created == 180


def test_workflow_job_carries_the_natural_keys():
    d = wh.parse_delivery("workflow_job", {"action": "completed", "workflow_job": JOB, "repository": REPO})
    assert isinstance(d, wh.JobEvent)
    assert (d.run_id, d.attempt, d.job_id, d.job.name, d.job.labels) == (42, 2, 9001, "test (3.12)",
                                                                         ["ubuntu-latest"])
    no_attempt = {k: v for k, v in JOB.items() if k != "run_attempt"}
    assert wh.parse_delivery("workflow_job", {"action": "queued", "workflow_job": no_attempt,
                                              "repository": REPO}).attempt == 1


def test_ping_and_unknown_events():
    assert wh.parse_delivery("ping", {"zen": "Keep it logically awesome.", "hook_id": 5}) == wh.Ping(5)
    assert wh.parse_delivery("push", {"anything": 1}) == wh.Ignored("push")
    assert wh.parse_delivery("x" * 500, None) == wh.Ignored("x" * 40)


@pytest.mark.parametrize("event, payload", [
    ("workflow_run", None), ("workflow_run", []), ("workflow_run", {"action": "completed"}),
    ("workflow_run", {"action": "completed", "workflow_run": {**RUN, "id": "42"}, "repository": REPO}),
    ("workflow_run", {"action": "completed", "workflow_run": {**RUN, "id": 10**400}, "repository": REPO}),
    ("workflow_run", {"action": "completed", "workflow_run": RUN, "repository": {"full_name": None}}),
    ("workflow_job", {"action": "completed", "workflow_job": {**JOB, "run_id": True}, "repository": REPO}),
    ("workflow_job", {"action": "completed", "workflow_job": {**JOB, "id": float("nan")}, "repository": REPO}),
    ("ping", "zen"),
])
def test_a_payload_not_in_githubs_shape_is_a_parse_error(event, payload):
    with pytest.raises(ParseError):
        wh.parse_delivery(event, payload)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=6),
                       max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(event=st.sampled_from(["workflow_run", "workflow_job", "ping"]), noise=JSONISH,
       field=st.sampled_from(list(RUN) + list(JOB) + ["action", "repository"]))
def test_fuzzed_payloads_parse_or_raise_parse_error_only(event, noise, field):
    key = "workflow_run" if event == "workflow_run" else "workflow_job"
    inner = dict(RUN if key == "workflow_run" else JOB)
    payload = {"action": "completed", key: inner, "repository": REPO, "hook_id": 1}
    (payload if field in ("action", "repository") else inner)[field] = noise
    try:
        wh.parse_delivery(event, json.loads(json.dumps(payload, allow_nan=True)))
    except ParseError:
        pass
