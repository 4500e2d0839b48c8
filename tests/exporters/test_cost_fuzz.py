"""Hypothesis fuzzing of the cost parsers (GitHub billing usage, Vercel FOCUS charges, Railway usage): any input
in, a result or ParseError out, nothing else; and what comes out stays within the label bounds."""

from __future__ import annotations

import copy
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obs_bridges import github_billing as gb
from obs_bridges import railway_usage, vercel_usage
from obs_bridges.parsing import NAME_LABEL_MAX, ParseError
from tests.support.fuzz import json_values, mutated


SUMMARY = {"timePeriod": {"year": 2026, "month": 11}, "organization": "acme", "usageItems": [
    {"product": "Actions", "sku": "actions_linux", "unitType": "minutes", "pricePerUnit": 0.008,
     "grossQuantity": 1000, "grossAmount": 8, "discountQuantity": 0, "discountAmount": 0, "netQuantity": 1000,
     "netAmount": 8}]}
REPORT = {"usageItems": [{"date": "2026-11-01", "product": "Actions", "sku": "Actions Linux", "quantity": 100,
                          "unitType": "minutes", "pricePerUnit": 0.008, "grossAmount": 0.8, "discountAmount": 0,
                          "netAmount": 0.8, "organizationName": "acme", "repositoryName": "acme/api"}]}
USAGE = [{"measurement": "CPU_USAGE", "value": 12.5, "tags": {}}]
CHARGE = {"BilledCost": 1.5, "BillingCurrency": "USD", "ChargeCategory": "Usage",
          "ChargePeriodStart": "2026-11-02T00:00:00.000Z", "ChargePeriodEnd": "2026-11-03T00:00:00.000Z",
          "ConsumedQuantity": 10, "ConsumedUnit": "GB", "EffectiveCost": 1.5, "ServiceName": "Fast Data Transfer",
          "ServiceProviderName": "Vercel", "Tags": {"ProjectId": "prj_1", "ProjectName": "web"},
          "PricingCategory": "Standard", "PricingCurrency": "USD", "PricingQuantity": 10, "PricingUnit": "GB"}

PARSERS = {
    "summary": (lambda d: gb.parse_summary(d, 2026, 11), SUMMARY),
    "report": (lambda d: gb.parse_report(d, 2026, 11), REPORT),
    "railway": (railway_usage.parse_period_usage, USAGE),
    "charges": (lambda d: vercel_usage.parse_charges(json.dumps(d).encode() + b"\n" + json.dumps(CHARGE).encode()),
                CHARGE),
}


def _check(name, data):
    fn, _ = PARSERS[name]
    try:
        out = fn(data)
    except ParseError:
        return
    except (TypeError, ValueError) as e:  # json.dumps of the fuzz itself (the charges line) may refuse it
        assert name == "charges", e
        return
    if name in ("summary", "report"):
        for (product, sku), u in out.items():
            for value in (product, sku, *(unit for unit, _ in u.quantity)):
                assert re.fullmatch(r"[a-z0-9_]{1,%d}" % NAME_LABEL_MAX, value), value
        assert len(out) <= gb.MAX_SKUS + 1


def test_samples_parse():
    for name, (fn, sample) in PARSERS.items():
        assert fn(copy.deepcopy(sample)), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_values)
def test_parsers_survive_arbitrary_json(data):
    for name in PARSERS:
        _check(name, data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from(sorted(PARSERS)), pick=st.integers(min_value=0, max_value=10**6), value=json_values)
def test_parsers_survive_mutated_samples(which, pick, value):
    _check(which, mutated(PARSERS[which][1], pick, value))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_charges_parser_survives_any_bytes(body):
    try:
        for c in vercel_usage.parse_charges(body):
            assert len(c.service) <= NAME_LABEL_MAX
    except ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([json.dumps(CHARGE), "", "  ", "{", "null", json.dumps({**CHARGE, "BilledCost": None}),
                                 json.dumps({**CHARGE, "ServiceName": "x" * 300})]), max_size=8))
def test_charges_lines_mixed(lines):
    body = "\n".join(lines).encode()
    try:
        out = vercel_usage.parse_charges(body)
    except ParseError:
        return
    assert len(out) == sum(1 for ln in lines if ln.strip())
