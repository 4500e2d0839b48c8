"""The webhook receiver's request handling (issue 15), without sockets: Receiver.handle with a recording
ledger and fake clocks. Authentication before anything is processed, body bounds before anything is read,
rate limits, redelivery dedupe, GitHub's two content types, and a fuzz that no request makes it fail."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from obs_bridges import config, github_receiver as gr
from obs_bridges.github_webhooks import signature
from tests.support.clock import T0, FakeClock

SECRET = "whsec-unit-receiver"
REPO = "o/r"


class Ledger:
    def __init__(self):
        self.calls: list[tuple] = []
        self.renders = 0
        self.fail = False

    def accepts_repo(self, repo):
        return repo == REPO

    def delivered_run(self, repo, run):
        if self.fail:
            raise RuntimeError("boom")
        self.calls.append(("run", repo, run.id, run.attempt, run.status))
        return "counted" if run.status == "completed" else "updated"

    def delivered_job(self, repo, run_id, job_id, job, workflow_name):
        self.calls.append(("job", repo, run_id, job_id, workflow_name))
        return "counted"

    def request_render(self):
        self.renders += 1


def receiver(env=None, *, secret=SECRET, mono=None):
    env = {"GITHUB_WEBHOOK_SECRET": secret, **(env or {})} if secret else dict(env or {})
    common = config.common("github", {"GITHUB_TOKEN": "ghp_unit"}, "GITHUB_API_URL", "GITHUB_TOKEN", "https://x")
    ledger, clock = Ledger(), FakeClock()
    mono = mono or FakeClock(0)
    rc = gr.Receiver(ledger, gr.load_settings(env, common), CollectorRegistry(), clock=clock, monotonic=mono)
    return rc, ledger, clock


def run_payload(rid=11, status="completed", repo=REPO) -> dict:
    return {"action": status if status != "queued" else "requested", "repository": {"full_name": repo},
            "workflow_run": {"id": rid, "run_attempt": 1, "name": "CI", "status": status,
                             "conclusion": "success" if status == "completed" else None,
                             "created_at": "2026-01-01T00:00:10Z", "run_started_at": "2026-01-01T00:00:12Z",
                             "updated_at": "2026-01-01T00:01:00Z", "event": "push", "head_branch": "main"}}


def post(rc, payload=None, *, event="workflow_run", delivery="d-1", sig="valid", body=None, ctype="application/json",
         headers=None, path="/webhook", method="POST"):
    body = body if body is not None else json.dumps(payload if payload is not None else run_payload()).encode()
    h = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": ctype,
         "Content-Length": str(len(body))}
    if sig == "valid":
        h["X-Hub-Signature-256"] = signature(SECRET.encode(), body)
    elif sig is not None:
        h["X-Hub-Signature-256"] = sig
    h.update(headers or {})
    reads = []

    def read(n):
        reads.append(n)
        return body[:n]
    r = rc.handle(method, path, h, read)
    r.reads = reads
    return r


def count(rc, event, result):
    return rc.total.labels(event, result)._value.get()


def test_a_signed_delivery_is_processed_and_counted():
    rc, ledger, _ = receiver()
    r = post(rc)
    assert (r.code, r.body) == (200, {"result": "counted"})
    assert ledger.calls == [("run", REPO, 11, 1, "completed")]
    assert count(rc, "workflow_run", "counted") == 1 and ledger.renders == 1
    assert rc.last._value.get() == T0


@pytest.mark.parametrize("sig", [None, "sha256=" + "0" * 64, signature(b"other", b"{}"), "garbage"])
def test_a_missing_or_wrong_signature_is_401_counted_and_never_processed(sig):
    rc, ledger, _ = receiver()
    r = post(rc, sig=sig)
    assert r.code == 401 and ledger.calls == []
    assert count(rc, "workflow_run", "bad_signature") == 1
    assert post(rc).code == 200, "the same delivery id, properly signed, is still processed"


def test_an_oversized_body_is_413_before_a_byte_is_read():
    rc, ledger, _ = receiver()
    big = b"x" * (gr.MAX_BODY_BYTES + 1)
    r = post(rc, body=big)
    assert r.code == 413 and r.close and r.reads == [] and ledger.calls == []
    assert count(rc, "workflow_run", "too_large") == 1


@pytest.mark.parametrize("headers,code", [({"Content-Length": None}, 411), ({"Transfer-Encoding": "chunked"}, 411),
                                          ({"Content-Length": "-1"}, 400), ({"Content-Length": "ten"}, 400)])
def test_a_body_without_a_usable_length_is_refused_unread(headers, code):
    rc, ledger, _ = receiver()
    h = {k: v for k, v in headers.items() if v is not None}
    body = json.dumps(run_payload()).encode()
    base = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d", "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(SECRET.encode(), body)}
    if headers.get("Content-Length", "") is not None:
        base["Content-Length"] = str(len(body))
    base.update(h)
    r = rc.handle("POST", "/webhook", base, lambda n: pytest.fail("read"))
    assert r.code == code and r.close and ledger.calls == []


def test_a_slow_body_is_408():
    rc, ledger, _ = receiver()
    body = b"{}"
    h = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d", "Content-Type": "application/json",
         "Content-Length": "2", "X-Hub-Signature-256": signature(SECRET.encode(), body)}
    assert rc.handle("POST", "/webhook", h, lambda n: None).code == 408


def test_requests_past_the_rate_limit_are_429_until_tokens_come_back():
    mono = FakeClock(0)
    rc, _, _ = receiver({"GITHUB_WEBHOOK_MAX_REQUESTS_PER_SECOND": "2"}, mono=mono)
    codes = [post(rc, sig=None).code for _ in range(22)]
    assert codes == [401] * 20 + [429] * 2  # a burst of 10 s at the rate, then refused unread
    r = post(rc, sig=None)
    assert r.code == 429 and r.headers["Retry-After"] == "1" and r.reads == []
    mono.advance(1.0)
    assert post(rc, delivery="d-2").code == 200
    assert count(rc, "workflow_run", "rate_limited") == 3
    assert receiver()[0].settings.burst >= 1000, "the default passes a large matrix's burst of job deliveries"


def test_a_redelivery_is_acknowledged_and_not_processed_again():
    rc, ledger, _ = receiver()
    assert post(rc, delivery="d-9").code == 200
    r = post(rc, delivery="d-9")
    assert (r.code, r.body) == (200, {"result": "redelivery"}) and len(ledger.calls) == 1


def test_a_processing_failure_is_500_and_the_redelivery_is_processed():
    rc, ledger, _ = receiver()
    ledger.fail = True
    assert post(rc, delivery="d-5").code == 500
    ledger.fail = False
    assert post(rc, delivery="d-5").body == {"result": "counted"}


def test_ping_unknown_events_and_unknown_repositories():
    rc, ledger, _ = receiver()
    assert post(rc, {"zen": "z", "hook_id": 1}, event="ping", delivery="p").body == {"result": "pong"}
    r = post(rc, {"action": "created"}, event="issues", delivery="i")
    assert (r.code, r.body) == (202, {"result": "ignored"})
    assert count(rc, "other", "ignored") == 1
    r = post(rc, run_payload(repo="else/where"), delivery="u")
    assert (r.code, r.body) == (202, {"result": "unknown_repo"}) and ledger.calls == []


def test_a_job_delivery_reaches_the_ledger_with_its_workflow_name():
    rc, ledger, _ = receiver()
    payload = {"action": "completed", "repository": {"full_name": REPO},
               "workflow_job": {"id": 77, "run_id": 11, "run_attempt": 1, "name": "build", "status": "completed",
                                "conclusion": "success", "workflow_name": "CI", "labels": ["ubuntu-latest"],
                                "created_at": "2026-01-01T00:00:10Z", "started_at": "2026-01-01T00:00:12Z",
                                "completed_at": "2026-01-01T00:01:00Z"}}
    assert post(rc, payload, event="workflow_job").code == 200
    assert ledger.calls == [("job", REPO, 11, 77, "CI")]


def test_githubs_form_encoded_content_type_is_accepted():
    rc, ledger, _ = receiver()
    body = ("payload=" + quote(json.dumps(run_payload()))).encode()
    assert post(rc, body=body, ctype="application/x-www-form-urlencoded").code == 200
    assert len(ledger.calls) == 1
    assert post(rc, body=b"<xml/>", ctype="text/xml", delivery="x").code == 400


def test_a_malformed_payload_is_400_naming_the_problem():
    rc, ledger, _ = receiver()
    r = post(rc, {"action": "completed", "repository": {"full_name": REPO}, "workflow_run": {"id": "x"}})
    assert r.code == 400 and "run.id" in r.body["error"] and ledger.calls == []
    assert count(rc, "workflow_run", "malformed") == 1


def test_without_its_secret_file_the_receiver_refuses_everything(tmp_path):
    missing = tmp_path / "secret"
    rc, ledger, _ = receiver({"GITHUB_WEBHOOK_SECRET_FILE": str(missing)}, secret=None)
    r = post(rc)
    assert r.code == 503 and ledger.calls == []
    missing.write_text(SECRET)  # read on every request: a secret written later works without a restart
    assert post(rc, delivery="d-2").code == 200


def test_the_receiver_needs_a_secret_setting():
    common = config.common("github", {"GITHUB_TOKEN": "t"}, "GITHUB_API_URL", "GITHUB_TOKEN", "https://x")
    with pytest.raises(config.ConfigError, match="GITHUB_WEBHOOK_SECRET_FILE"):
        gr.load_settings({}, common)


def test_demo_mode_falls_back_to_the_simulators_secret_only_while_no_secret_is_given(tmp_path):
    demo = config.common("github", {"OBS_DEMO_SIMULATOR_URL": "http://127.0.0.1:1"}, "GITHUB_API_URL",
                         "GITHUB_TOKEN", "https://x")
    env = {"GITHUB_WEBHOOK_SECRET_FILE": str(tmp_path / "absent"),
           "OBS_DEMO_GITHUB_WEBHOOK_SECRET_FILE": str(tmp_path / "demo")}
    assert gr.load_settings(env, demo).secret.name == "OBS_DEMO_GITHUB_WEBHOOK_SECRET"
    (tmp_path / "absent").write_text("mine")
    assert gr.load_settings(env, demo).secret.name == "GITHUB_WEBHOOK_SECRET"
    live = config.common("github", {"GITHUB_TOKEN": "t"}, "GITHUB_API_URL", "GITHUB_TOKEN", "https://x")
    (tmp_path / "absent").unlink()
    assert gr.load_settings(env, live).secret.name == "GITHUB_WEBHOOK_SECRET", "never the demo secret when live"


def test_other_paths_and_methods():
    rc, _, _ = receiver()
    assert rc.handle("GET", "/healthz", {}, lambda n: b"").code == 200
    assert rc.handle("GET", "/webhook", {}, lambda n: b"").code == 405
    assert rc.handle("POST", "/metrics", {"Content-Length": "0"}, lambda n: b"").code == 404


def test_refusals_are_logged_once_a_minute_not_once_each(caplog):
    rc, _, clock = receiver()
    with caplog.at_level("WARNING", logger="obs_bridges.github.webhook"):
        for _ in range(50):
            post(rc, sig=None)
        clock.advance(61)
        post(rc, sig=None)
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2 and lines[1].fields["refused_since_last_line"] == 49
    assert SECRET not in caplog.text


@settings(max_examples=300, deadline=None)
@given(event=st.sampled_from(["workflow_run", "workflow_job", "ping", "push", ""]),
       payload=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                                ["action", "repository", "full_name", "workflow_run", "workflow_job", "id",
                                 "run_id", "status", "created_at", "name", "labels"]), c, max_size=6), max_leaves=25),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))
def test_fuzz_signed_deliveries_never_fail_the_receiver(event, payload, ctype):
    rc, ledger, _ = receiver()
    body = json.dumps(payload).encode()
    if ctype == "application/x-www-form-urlencoded":
        body = ("payload=" + quote(body.decode())).encode()
    r = post(rc, body=body, event=event, ctype=ctype)
    assert r.code in (200, 202, 400), r.body
