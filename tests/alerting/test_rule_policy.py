"""The alert policy, enforced here in Python because pint is not obtainable (see test_pint.py)."""
from __future__ import annotations

import pytest

from tests.alerting import rulepolicy as rp

ALERTS = [(f.name, g, r) for f, g, r in rp.load_rules() if "alert" in r]


def test_there_are_alerts_and_recordings():
    assert len(ALERTS) >= 40
    assert any(r.get("record") == "obs:prometheus_up:bool" and r["expr"] == 'max(up{job="prometheus"})'
               for _, _, r in rp.load_rules())


@pytest.mark.parametrize("fname,group,rule", ALERTS, ids=[f"{r['alert']}-{r['labels'].get('severity')}" for _, _, r in ALERTS])
def test_alert_follows_policy(fname, group, rule):
    assert rp.alert_problems(group, rule) == []


@pytest.mark.parametrize("fname,group,rule", [(f.name, g, r) for f, g, r in rp.load_rules() if "record" in r],
                         ids=lambda x: x if isinstance(x, str) else None)
def test_recording_rules_have_no_raw_counters(fname, group, rule):
    assert rp.counter_problems(rule["expr"]) + rp.offset_problems(rule["expr"]) == []


@pytest.mark.parametrize("fname,group,rule", list(rp.load_rules()),
                         ids=lambda x: x if isinstance(x, str) else None)
def test_rules_read_series_names_that_exist_and_cannot_collide(fname, group, rule):
    assert rp.series_name_problems(rule["expr"]) == []


@pytest.mark.parametrize("expr", [
    'sum by (job, receiver) (rate({__name__=~"otelcol_receiver_refused_(spans|metric_points|log_records)_total"}[5m])) > 0',
    'sum(rate({__name__=~"otelcol_receiver_accepted_spans(_total)?"}[5m]))',
    'sum by (job) (rate({__name__=~"(railway|vercel)_api_requests_total", job=~"$job"}[$__rate_interval]))',
    'sum(rate(otelcol_exporter_send_failed_spans_total[5m])) > 0',
])
def test_series_name_check_catches_collisions_and_total_only_collector_names(expr):
    assert rp.series_name_problems(expr)


def test_series_name_check_accepts_one_rate_per_name():
    assert rp.series_name_problems(
        'label_replace(sum by (job) (rate(otelcol_receiver_refused_spans[5m]) or '
        'rate(otelcol_receiver_refused_spans_total[5m])), "signal", "spans", "", "") > 0') == []
    assert rp.series_name_problems('time() - max ({__name__=~"(a|b)_exporter_last_success_timestamp_seconds"})') == []


def test_every_runbook_is_used_and_follows_the_template():
    used = {r["annotations"]["runbook_url"].rsplit("/", 1)[1] for _, _, r in ALERTS}
    files = {p.name for p in rp.RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert files == used, f"orphan runbooks: {files - used}; missing: {used - files}"
    for name in files:
        text = (rp.RUNBOOKS / name).read_text()
        idx = [text.find(s) for s in rp.RUNBOOK_SECTIONS]
        assert all(i >= 0 for i in idx) and idx == sorted(idx), f"{name}: sections {rp.RUNBOOK_SECTIONS} in order"
        # Logs: LogQL for apps' OTLP logs in Loki; the stack's own components log to stdout only (shell).
        assert "```promql" in text and ("```logql" in text or "```shell" in text), (
            f"{name}: diagnosis needs PromQL and a way to read the logs (LogQL or a shell command)")


def test_alert_names_are_camel_case_and_unique_per_severity():
    seen = set()
    for _, _, r in ALERTS:
        assert r["alert"][:1].isupper() and "_" not in r["alert"], r["alert"]
        key = (r["alert"], r["labels"]["severity"], r["labels"].get("environment"))
        assert key not in seen, f"duplicate {key}"
        seen.add(key)


# The checks themselves catch the seeds' mistakes (so a green run means something).
@pytest.mark.parametrize("expr", [
    "llm_tokens_total > 10000000",
    "api_cost_usd_total - api_cost_usd_total offset 24h > 500",
    "sum(http_requests_total) > 5",
    'sum({__name__=~"otelcol_receiver_refused_spans_total"}) > 0',
])
def test_counter_check_catches_raw_counters(expr):
    assert rp.counter_problems(expr)


@pytest.mark.parametrize("expr", [
    "sum(rate(http_requests_total[5m])) > 1",
    "increase(api_cost_usd_total[24h]) > on () obs:cost_budget_usd:per_day",
    'sum(rate({__name__=~"otelcol_exporter_send_failed_(spans|log_records)_total"}[5m])) > 0',
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
])
def test_counter_check_accepts_rates(expr):
    assert rp.counter_problems(expr) == []


def test_offset_check():
    assert rp.offset_problems("api_cost_usd offset 24h")
    assert rp.offset_problems("queue_depth_messages offset 1h < 5")
    assert rp.offset_problems("rate(http_requests_total[5m] offset 1d)") == []
    # A service's own baseline: a recording rule's range inside avg_over_time/present_over_time.
    assert rp.offset_problems("avg_over_time(service_environment:http_requests:rate5m[1h] offset 15m)") == []
    assert rp.offset_problems("present_over_time(service_environment:http_requests:rate5m[10m] offset 75m)") == []
    assert rp.offset_problems("avg_over_time(queue_depth_messages[1h] offset 15m)")
    assert rp.offset_problems("max_over_time(service_environment:http_requests:rate5m[1h] offset 15m)")
    assert rp.offset_problems("service_environment:http_requests:rate5m offset 1h")


def test_policy_rejects_seed_style_rule():
    seed = {"alert": "DailyCostSpike", "expr": "(api_cost_usd_total - api_cost_usd_total offset 24h) > 500",
            "for": "0m", "labels": {"team": "finance"},
            "annotations": {"summary": "Daily cost {{ $value }}", "description": "x"}}
    problems = " ".join(rp.alert_problems("cost", seed))
    for word in ("severity", "service", "summary must be static", "description", "runbook_url",
                 "dashboard_url", "shorter than 1m", "raw counter"):
        assert word in problems
