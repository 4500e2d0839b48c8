"""The stack's own container logs in the real Loki (issue 16, part 4; docs/logging.md, "Logs in Loki"): every
service logs through Docker's fluentd driver to the collector, so Loki has their lines labelled by compose
service; our components' JSON fields are structured metadata (queryable without a parser, and with
`| json` as the runbooks write it); Loki holds no index label outside the bounded set; and
`docker compose logs` still works (Docker's dual-logging cache)."""
from __future__ import annotations

import time
import urllib.parse

from tests.docker.conftest import PROJECT, URL
from tests.e2e import smoke

# Loki's index labels (loki/loki.yml otlp_config). __stream_shard__ is Loki's own, added only when it
# splits a very busy stream, and bounded by its shard count.
ALLOWED_LABELS = {"service_name", "deployment_environment", "deployment_environment_name", "platform", "project",
                  "source", "level", "__stream_shard__"}
LEVELS = {"debug", "info", "warning", "error", "critical", "unknown"}
WINDOW_S = 3600


def _range() -> dict:
    now = time.time_ns()
    return {"start": now - WINDOW_S * 10**9, "end": now + 60 * 10**9}


def label_values(label: str, query: str) -> set[str]:
    r = smoke.get_json(f"{URL['loki']}/loki/api/v1/label/{label}/values?"
                       + urllib.parse.urlencode({"query": query, **_range()}))
    return set(r.get("data") or [])


def lines(query: str, limit: int = 50) -> list[tuple[dict, str]]:
    r = smoke.get_json(f"{URL['loki']}/loki/api/v1/query_range?"
                       + urllib.parse.urlencode({"query": query, "limit": limit, **_range()}))
    return [(s["stream"], v[1]) for s in r["data"]["result"] for v in s["values"]]


def test_compose_services_have_their_logs_in_loki(stack):
    want = {"prometheus", "alertmanager", "otelcol", "grafana", "loki"}

    def services():
        have = label_values("service_name", f'{{platform="compose", project="{PROJECT}"}}')
        return have if want <= have and any(s.endswith("-exporter") for s in have) else None

    have = smoke.poll(f"stack logs in Loki for {sorted(want)} and an exporter", services, timeout=180, every=5)
    assert label_values("source", '{platform="compose"}') <= {"stdout", "stderr", "unknown"}
    assert label_values("level", '{platform="compose"}') <= LEVELS
    assert "unknown" not in have


def test_exporter_json_fields_are_structured_metadata(stack):
    exporters = '{platform="compose", service_name=~".+-exporter"}'

    def found():
        got = lines(f'{exporters} | component=~".+" | logger=~"obs_bridges.*"')
        return got or None

    got = smoke.poll("an exporter line with its fields as structured metadata", found, timeout=180, every=5)
    stream, line = got[0]
    assert stream["platform"] == "compose" and stream["service_name"].endswith("-exporter")
    assert line.startswith("{"), "the body stays the JSON line"
    # The runbooks' form: `| json` over the same line finds the same fields.
    assert lines(f'{exporters} | json | component=~".+" | msg!=""')


def test_no_index_label_outside_the_bounded_set(stack):
    smoke.poll("compose streams in Loki", lambda: label_values("platform", '{platform=~".+"}'), timeout=180, every=5)
    r = smoke.get_json(f"{URL['loki']}/loki/api/v1/labels?" + urllib.parse.urlencode(_range()))
    labels = set(r.get("data") or [])
    assert {"service_name", "platform", "project", "source", "level"} <= labels
    assert labels <= ALLOWED_LABELS, sorted(labels - ALLOWED_LABELS)


def test_docker_compose_logs_still_works(stack):
    out = stack.logs("prometheus", tail=20)
    assert out.strip(), "docker compose logs shows nothing with the fluentd driver: dual logging is off"
