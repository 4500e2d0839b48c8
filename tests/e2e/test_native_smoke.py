"""End-to-end smoke on the native stack: real binaries, the shipped config files, unchanged. Loki and Tempo
are our OTLP sink at their hostnames (tests/harness/stack.py STAND_INS): the collector's log and trace
pipelines are proved up to their destination; Loki and Tempo themselves are the Docker tier's."""
from __future__ import annotations

import pytest

from tests.e2e import smoke
from tests.harness.stack import PYTHON_IMAGES


def test_every_runnable_service_is_healthy(native_stack):
    assert native_stack.running, "nothing started"
    for name, r in native_stack.running.items():
        assert r.proc.poll() is None, f"{name} exited ({r.proc.returncode}):\n{r.log_tail()}"
    # Which compose services have no native binary here, and why, for the test report.
    print("not run natively:", native_stack.skipped)
    assert {"prometheus", "alertmanager", "loki", "tempo", "otelcol"} <= set(native_stack.running)
    assert (native_stack.stand_in("loki"), native_stack.stand_in("tempo")) == ("loki", "tempo")


def test_services_run_as_their_compose_user(native_stack):
    """As in the containers: non-root, and the named volumes writable by that user."""
    from pathlib import Path
    for name, r in native_stack.running.items():
        user = native_stack.all[name].user
        if native_stack.all[name].image.split(":")[0] in PYTHON_IMAGES or native_stack.stand_in(name):
            continue  # Python services (and the OTLP sink) run with the host interpreter as root, see README
        uid = next(line.split()[1] for line in Path(f"/proc/{r.proc.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:"))
        assert uid == user.split(":")[0] != "0", f"{name} runs as uid {uid}, compose says {user}"


def test_expected_targets_up(native_stack):
    prom = native_stack.url("prometheus", 9090)
    running = set(native_stack.running)

    def scraped_all():
        t = smoke.get_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]
        return t if t and all(x["lastScrape"] != "0001-01-01T00:00:00Z" for x in t) else None

    def problems():
        out = []
        for t in smoke.get_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]:
            job, health = t["labels"]["job"], t["health"]
            if job == "blackbox-http":
                continue  # the probe's own result is checked below
            if "/probe?" in t["scrapeUrl"]:
                service = "blackbox-exporter"  # a probe job's target is the exporter; its result is checked below
            else:
                service = t["labels"]["instance"].split(":")[0]
            service = "prometheus" if service == "localhost" else service
            want = "up" if service in running else "down"
            if health != want:
                out.append(f"{job} {t['scrapeUrl']}: {health}, expected {want} ({t.get('lastError')})")
        return out

    targets = smoke.poll("every target scraped once", scraped_all, timeout=60)
    # A target scraped before its service was up needs one more interval (15 s) to turn up.
    try:
        smoke.poll("every target in its expected state", lambda: not problems(), timeout=45)
    except AssertionError:
        pytest.fail("\n".join(problems()))
    assert {t["labels"]["job"] for t in targets} >= {"prometheus", "alertmanager", "loki", "tempo", "otelcol",
                                                     "blackbox-http", "blackbox-exporter"}

    if "blackbox-exporter" in running:
        def probes():
            res = smoke.prom_query(prom, 'probe_success{job="blackbox-http"}')
            return res if len(res) == 5 else None
        for r in smoke.poll("blackbox probe results", probes, timeout=45):
            host = r["metric"]["instance"].split("//")[1].split(":")[0]
            want = 1.0 if host in running else 0.0
            assert float(r["value"][1]) == want, f"probe of {r['metric']['instance']}: {r['value'][1]}"
        # The demo's post-deployment smoke probe: its result carries the service (metric relabelling), this
        # job's `up` does not (it must not stand in for the demo app's own scrape in APIDown).
        want = "1" if "demo-app" in running else "0"
        smoke_probe = smoke.poll("the smoke probe of the demo app", lambda: smoke.prom_query(
            prom, f'probe_success{{job="blackbox-smoke", probe_group="smoke", service="obs-demo"}} == {want}'),
            timeout=45)
        assert len(smoke_probe) == 1, smoke_probe
        assert not smoke.prom_query(prom, 'up{job="blackbox-smoke", service!=""}')

    # Supabase's own metrics endpoint, demo data: one target per simulated project from the files the
    # simulator writes into the volume it shares with Prometheus (none without the simulator).
    if "simulator" in running:
        def demo_targets_up():
            t = [t for t in smoke.get_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]
                 if t["labels"]["job"] == "supabase-metrics-demo"]
            return t if len(t) == 2 and all(x["health"] == "up" for x in t) else None
        demo = smoke.poll("both demo Supabase metrics targets up", demo_targets_up, timeout=45)
        assert all(t["labels"]["demo"] == "true" for t in demo), demo
        assert {t["labels"]["supabase_project"] for t in demo} == {"db-amber", "db-birch"}


def test_rules_evaluated_and_alertmanager_discovered(native_stack):
    prom = native_stack.url("prometheus", 9090)
    smoke.poll("recording rule result", lambda: smoke.prom_query(prom, "obs:prometheus_up:bool == 1"), timeout=45)
    ams = smoke.get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert any("alertmanager:9093" in a["url"] for a in ams), ams


@pytest.fixture(scope="module")
def sent(native_stack):
    return smoke.send_signals(native_stack.url("otelcol", 4318), "obs-smoke")


def test_otlp_log_reaches_the_log_backend_with_trace_id(native_stack, sent):
    """Through the collector's logs pipeline (its resource processor adds deployment.environment) to
    `otlp_http/loki`, by trace id."""
    recs = smoke.poll("the OTLP log at loki:3100 (sink), by trace_id", lambda: smoke.sink_has_log(
        native_stack.url("loki", 3100), sent), timeout=60)
    assert len(recs) == 1, recs
    assert recs[0]["resource"]["deployment.environment"] == "local", recs[0]["resource"]


def test_otlp_metric_reaches_prometheus(native_stack, sent):
    res = smoke.poll("the OTLP counter in Prometheus", lambda: smoke.prometheus_has_metric(
        native_stack.url("prometheus", 9090), sent), timeout=60)
    assert res[0]["metric"]["job"] == "obs-smoke"


def test_otlp_span_reaches_the_trace_backend(native_stack, sent):
    """Through the collector's traces pipeline to `otlp_grpc/tempo` (OTLP gRPC), by trace id."""
    spans = smoke.poll("the OTLP span at tempo:4317 (sink), by trace id", lambda: smoke.sink_has_trace(
        native_stack.url("tempo", 3200), sent), timeout=60)
    assert len(spans) == 1, spans
    assert spans[0]["resource"]["deployment.environment"] == "local", spans[0]["resource"]


def test_idle_rss_report(native_stack):
    """Not an assertion on speed: records each component's idle RSS for the closing note."""
    rss = native_stack.rss_kib()
    print("idle RSS MiB:", {k: round(v / 1024, 1) for k, v in sorted(rss.items())})
    assert all(v > 0 for v in rss.values()), rss
