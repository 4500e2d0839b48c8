"""Vercel log drain core (issue 16, groundwork): x-vercel-signature, the verification header, and batches in
both delivery formats parsed into records with bounded labels and their trace ids."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_bridges import vercel_drain as vd
from obs_bridges.parsing import ParseError
from tests.support.fuzz import json_values, mutated

SECRET = b"drain-secret-unit"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
RECORD = {"id": "1573817187330377061717300000", "deploymentId": "dpl_233NRGRjVZX1caZrXWtz5g1TAksD",
          "source": "lambda", "host": "shop-abc.vercel.app", "timestamp": 1787220000123, "projectId": "prj_1",
          "projectName": "shop", "level": "error", "message": "payment failed", "path": "/api/pay",
          "requestId": "643af4e3-975a-4cc7-9e7a-1eda11539d90", "statusCode": 500, "environment": "production",
          "type": "stderr", "traceId": TRACE, "spanId": "00f067aa0ba902b7", "executionRegion": "iad1"}


def test_the_signature_is_hex_hmac_sha1_of_the_raw_body():
    body = json.dumps([RECORD]).encode()
    expected = hmac.new(SECRET, body, hashlib.sha1).hexdigest()
    assert vd.signature(SECRET, body) == expected
    assert vd.verify_signature(SECRET, body, expected) and vd.verify_signature(SECRET, body, expected.upper())


@pytest.mark.parametrize("header", [None, "", "0" * 40, "0" * 39, "zz" * 20, "sha1=" + "0" * 40,
                                    vd.signature(b"other", b"[]"), vd.signature(SECRET, b"[] ")])
def test_anything_but_the_exact_signature_is_refused(header):
    assert not vd.verify_signature(SECRET, b"[]", header)


def test_an_empty_secret_verifies_nothing():
    assert not vd.verify_signature(b"", b"[]", vd.signature(b"", b"[]"))


def test_the_verification_answer_is_the_token_in_x_vercel_verify():
    assert vd.verification_headers("tok123") == {"x-vercel-verify": "tok123"}


def test_a_record_becomes_bounded_labels_content_and_metadata():
    (r,) = vd.parse_batch("application/json", json.dumps([RECORD]).encode())
    assert r.labels() == {"project": "shop", "environment": "production", "source": "lambda", "level": "error"}
    assert r.time == 1787220000.123 and r.message == "payment failed"
    assert (r.trace_id, r.span_id) == (TRACE, "00f067aa0ba902b7")
    assert r.metadata["request_id"] == RECORD["requestId"] and r.metadata["path"] == "/api/pay"
    assert r.metadata["status_code"] == "500" and r.metadata["deployment_id"].startswith("dpl_")
    assert not set(r.labels().values()) & set(r.metadata.values()), "no id or path is a label"


def test_ndjson_and_a_single_object_are_accepted():
    lines = "\n".join(json.dumps({**RECORD, "id": str(i)}) for i in range(3)) + "\n"
    assert len(vd.parse_batch("application/x-ndjson", lines.encode())) == 3
    assert len(vd.parse_batch(None, lines.encode())) == 3, "NDJSON recognised without its content type"
    assert len(vd.parse_batch("application/json", json.dumps(RECORD).encode())) == 1


@pytest.mark.parametrize("changes,labels", [
    ({"source": "quantum", "environment": "staging", "level": "debug", "type": "stdout"},
     {"source": "other", "environment": "other", "level": "info"}),
    ({"level": None, "type": "stderr"}, {"level": "error"}),
    ({"projectName": None}, {"project": "unknown"}),
    ({"projectName": "p" * 500}, {"project": "p" * 64}),
])
def test_labels_stay_within_their_enums_and_bounds(changes, labels):
    (r,) = vd.parse_batch("application/json", json.dumps([{**RECORD, **changes}]).encode())
    assert {k: r.labels()[k] for k in labels} == labels


@pytest.mark.parametrize("trace", ["0" * 32, "xyz", TRACE + "00", 42])
def test_only_a_valid_trace_id_is_kept(trace):
    (r,) = vd.parse_batch("application/json", json.dumps([{**RECORD, "traceId": trace}]).encode())
    assert r.trace_id is None


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1]", b'[{"timestamp": "now"}]', b"{", b'{"a":1}\n[',
                                  json.dumps([RECORD] * (vd.MAX_RECORDS + 1)).encode(),
                                  json.dumps([{**RECORD, "timestamp": True}]).encode()])
def test_a_body_that_is_not_a_drain_batch_is_a_parse_error(body):
    with pytest.raises(ParseError):
        vd.parse_batch("application/json", body)


def test_a_long_message_keeps_its_tail():
    (r,) = vd.parse_batch(None, json.dumps([{**RECORD, "message": "a" * vd.MESSAGE_MAX + "END"}]).encode())
    assert len(r.message) == vd.MESSAGE_MAX and r.message.endswith("END")


@settings(max_examples=300, deadline=None)
@given(pick=st.integers(min_value=0, max_value=10**6), value=json_values,
       ctype=st.sampled_from(["application/json", "application/x-ndjson", None]))
def test_fuzz_mutated_records_parse_or_fail_cleanly(pick, value, ctype):
    body = json.dumps(mutated([RECORD, {**RECORD, "source": "edge"}], pick, value)).encode()
    try:
        records = vd.parse_batch(ctype, body)
    except ParseError:
        return
    for r in records:
        labels = r.labels()
        assert labels["source"] in (*vd.SOURCES, "other") and labels["level"] in vd.LEVELS
        assert labels["environment"] in (*vd.ENVIRONMENTS, "other") and len(labels["project"]) <= 64


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_parse_or_fail_cleanly(body):
    try:
        vd.parse_batch(None, body)
    except ParseError:
        pass
