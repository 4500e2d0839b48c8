"""Forwarding on the real images (docs/forwarding.md): docker-compose.yml + docker-compose.forward.yml, with
the far side stood up by tests/docker/forward-targets.compose.yml (a second Prometheus receiving remote
writes; an OTLP gateway in front of the stack's own Loki and Tempo). Checked:
  - Prometheus starts through obs-start under the image's busybox sh and runs the rendered remote_write;
    its samples reach the receiver with `stack="obs-stack"`, without the demo's series, and none fail;
  - the collector (forward-only) sends logs and traces only through the gateway, with the bearer token
    from the secret file, and they land in Loki and Tempo; the local exporters are not running;
  - Grafana provisions "Prometheus (long-term)" (uid prometheus-longterm) from the secret files, reads the
    receiver through it, and every Prometheus panel query of every dashboard runs against it without error.
Runs after the main stack's tests: it takes the same host ports, so the main stack goes down first.
The static part (the merged files with the real Compose CLI, the gateway config with `otelcol validate`)
runs everywhere."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.parse

import pytest

from tests.docker import grafana_query
from tests.docker.composectl import Compose, http, log, started
from tests.docker.conftest import OPERATOR_PASSWORD, PROJECT, URL
from tests.docker.test_0_override import merged
from tests.e2e import smoke
from tests.harness.compose import ROOT
from tests.support.promtext import metric_sum

FILES = ["docker-compose.forward.yml", "tests/docker/forward-targets.compose.yml"]
GATEWAY_CONFIG = ROOT / "tests" / "docker" / "forward" / "gateway.yaml"
SECRETS = ROOT / "secrets"
# The test's own secret files: written for this run, removed after. An operator's file of the same name
# is never overwritten (it may point at a real account).
TOKEN = secrets.token_urlsafe(24)
FILES_WRITTEN = {
    "prometheus_remote_write_url": "http://fwd-receiver:9090/api/v1/write",
    "otlp_forward_endpoint": "http://fwd-gateway:4318",
    "otlp_forward_token": TOKEN,
    "prometheus_longterm_url": "http://fwd-receiver:9090",
    # The receiver asks for no credentials and ignores these; the datasource still needs the files.
    "prometheus_longterm_username": "fwd-test",
    "prometheus_longterm_password": secrets.token_urlsafe(18),
}
ENV = {"PROMETHEUS_REMOTE_WRITE_AUTH": "none", "OTLP_FORWARD_LOCAL": "false"}
LONGTERM = "prometheus-longterm"


# ------------------------------------------------------------------ static: runs everywhere

def test_the_forwarding_targets_merge_over_the_stack():
    svc = merged("docker-compose.yml", *FILES)
    assert {"fwd-receiver", "fwd-gateway"} <= set(svc)
    assert svc["fwd-gateway"]["image"] == svc["otelcol"]["image"], "the gateway runs the stack's collector build"
    assert not svc["fwd-receiver"].get("ports") and not svc["fwd-gateway"].get("ports")
    mounts = {v["target"]: v["source"] for v in svc["fwd-gateway"]["volumes"]}
    assert mounts["/etc/fwd/gateway.yaml"] == str(GATEWAY_CONFIG)
    assert mounts["/run/obs-secrets"] == str(SECRETS)
    assert svc["prometheus"]["entrypoint"][:3] == ["/bin/sh", "/usr/local/bin/obs-start", "prometheus"]


def test_the_gateway_config_validates_with_the_collector_build():
    from tests.conftest import require_tool
    p = subprocess.run([str(require_tool("otelcol")), "validate", f"--config={GATEWAY_CONFIG}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


# ------------------------------------------------------------------ on the images

@pytest.fixture(scope="module")
def fwd_stack():
    saved = {k: os.environ.get(k) for k in ENV}

    def prepare() -> None:
        existing = [n for n in FILES_WRITTEN if (SECRETS / n).exists()]
        if existing:
            pytest.fail(f"secrets/{', secrets/'.join(existing)} exist: this test writes its own forwarding "
                        "secrets and never overwrites an operator's; move them aside for the Docker tier")
        os.environ.update(ENV)
        for name, value in FILES_WRITTEN.items():
            written.append(SECRETS / name)
            (SECRETS / name).write_text(value)  # printf '%s', as docs/forwarding.md says
            (SECRETS / name).chmod(0o444)       # read by uids 65534, 10001 and 472

    written = []
    try:
        yield from started(Compose(PROJECT + "-fwd", FILES), prepare)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def receiver_query(stack: Compose, q: str) -> list:
    """An instant query on fwd-receiver, asked inside its container (busybox wget; no published port)."""
    out = stack.exec("fwd-receiver", "wget", "-qO-",
                     "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    body = json.loads(out)
    assert body["status"] == "success", body
    return body["data"]["result"]


def grafana_admin(stack: Compose) -> tuple[str, str]:
    if OPERATOR_PASSWORD.exists():
        return "admin", OPERATOR_PASSWORD.read_text().strip()
    return "admin", stack.exec("grafana", "cat", "/var/lib/grafana/.admin_password").strip()


def test_the_forwarding_stack_comes_up_healthy(fwd_stack):
    rows = {r["Service"]: r for r in fwd_stack.ps()}
    bad = [s for s, r in rows.items() if r.get("State") != "running" or r.get("Health") != "healthy"]
    assert {"fwd-receiver", "fwd-gateway", "prometheus", "otelcol", "grafana"} <= set(rows) and not bad, (
        f"{bad}\n{fwd_stack.diagnosis()}")
    # Prometheus runs the copy obs-start rendered, with the URL from the secret file inline.
    status, body = http(f"{URL['prometheus']}/api/v1/status/config")
    assert status == 200 and "remote_write:" in body["data"]["yaml"], body
    assert "http://fwd-receiver:9090/api/v1/write" in body["data"]["yaml"]
    assert "forwarding metrics with remote_write" in fwd_stack.logs("prometheus", 400)


def test_metrics_reach_the_receiver_without_the_demo(fwd_stack):
    # The demo runs locally (so the drop below has something to drop)...
    assert smoke.prom_query(URL["prometheus"], 'count({service="obs-demo"})'), "no demo series locally"
    got = smoke.poll("the stack's own series at the receiver",
                     lambda: receiver_query(fwd_stack, 'count(prometheus_build_info{stack="obs-stack"})'),
                     timeout=180, every=5)
    log(f"receiver: {got}")
    # ...and none of it leaves the stack; nor does the `notifications` label.
    assert receiver_query(fwd_stack, 'count({service="obs-demo"})') == []
    assert receiver_query(fwd_stack, 'count({demo="true"})') == []
    assert receiver_query(fwd_stack, 'count({notifications!=""})') == []
    sent = smoke.prom_query(URL["prometheus"], "sum(prometheus_remote_storage_samples_total)")
    failed = smoke.prom_query(URL["prometheus"], "sum(prometheus_remote_storage_samples_failed_total)")
    assert sent and float(sent[0]["value"][1]) > 0
    assert not failed or float(failed[0]["value"][1]) == 0, failed


def test_logs_and_traces_go_through_the_gateway_only(fwd_stack):
    sent = smoke.send_signals(URL["otlp"], "obs-smoke-fwd")
    smoke.poll("the log in Loki, through the gateway", lambda: smoke.loki_has_log(URL["loki"], sent),
               timeout=120, every=3)
    smoke.poll("the trace in Tempo, through the gateway", lambda: smoke.tempo_has_trace(URL["tempo"], sent),
               timeout=120, every=3)
    metrics = fwd_stack.exec("fwd-gateway", "/busybox/busybox", "wget", "-qO-", "http://127.0.0.1:8888/metrics")
    logs_in = metric_sum(metrics, "otelcol_receiver_accepted_log_records", receiver="otlp")
    spans_in = metric_sum(metrics, "otelcol_receiver_accepted_spans", receiver="otlp")
    log(f"gateway accepted {logs_in:.0f} log records and {spans_in:.0f} spans")
    assert logs_in > 0 and spans_in > 0
    # Forward-only: the stack's collector has no local exporter running, so nothing went around the gateway.
    local = smoke.prom_query(URL["prometheus"], 'count(otelcol_exporter_sent_spans{exporter="otlp_grpc/tempo"}) '
                                                'or count(otelcol_exporter_sent_log_records{exporter="otlp_http/loki"})')
    assert local == [], local
    assert TOKEN not in fwd_stack.logs("otelcol", 400) + fwd_stack.logs("fwd-gateway", 400)


def test_grafana_reads_the_long_term_store_with_every_dashboard(fwd_stack):
    admin = grafana_admin(fwd_stack)
    status, ds = http(f"{URL['grafana']}/api/datasources/uid/{LONGTERM}", auth=admin)
    assert status == 200 and ds["type"] == "prometheus" and ds["url"] == FILES_WRITTEN["prometheus_longterm_url"], ds
    probe = grafana_query.PanelQuery("long-term probe", ("", ""), {
        "refId": "A", "datasource": {"type": "prometheus", "uid": LONGTERM},
        "expr": 'count(prometheus_build_info{stack="obs-stack"})', "intervalMs": 15000, "maxDataPoints": 200},
        False)

    def probe_has_data() -> bool:
        err, has_data = grafana_query.run(URL["grafana"], admin, probe)
        assert not err, err  # poll() reports the last error
        return has_data

    smoke.poll("data through the long-term datasource", probe_has_data, timeout=180, every=5)
    errors, ran = [], 0
    for pq in grafana_query.panel_queries():
        if pq.kind != "prometheus":
            continue
        pq.body["datasource"] = {"type": "prometheus", "uid": LONGTERM}
        err, _ = grafana_query.run(URL["grafana"], admin, pq)
        ran += 1
        if err:
            errors.append(f"{pq.where}: {err}")
    log(f"{ran} Prometheus panel queries ran against {LONGTERM}")
    assert ran > 50 and not errors, "\n".join(errors)
