"""Every provisioned panel query (PromQL, LogQL, TraceQL) and annotation, run the way the browser runs it:
through Grafana's /api/ds/query on the real images, fed by the demo app, its load generator and the
platform bridges reading the simulator. Each must answer without error and with data; a short,
reasoned allow-list (the native tier's) covers incident-only panels. Sparse panels get bounded re-runs."""
from __future__ import annotations

import time
from dataclasses import dataclass

from tests.dashboards import dashlib
from tests.dashboards.test_queries_live import ALLOWED_EMPTY
from tests.docker.composectl import http, log
from tests.docker.conftest import URL

FIXED_UID = {"prometheus": "prometheus", "loki": "loki", "tempo": "tempo", "alertmanager": "alertmanager"}
RETRY_SECONDS = 180  # the demo's 5xx are 0.4% of requests; Tempo leaves the newest 30 s out of searches


@dataclass
class PanelQuery:
    where: str
    key: tuple[str, str]
    body: dict
    annotation: bool


def _datasource(ref: dict | str | None, fallback: str) -> dict:
    ref = ref if isinstance(ref, dict) else {"type": fallback}
    kind = ref.get("type") or fallback
    uid = ref.get("uid") or FIXED_UID[kind]
    if uid.startswith("$"):  # a datasource variable: its default is the provisioned one
        uid = FIXED_UID[kind]
    return {"type": kind, "uid": uid}


def panel_queries() -> list[PanelQuery]:
    out = []
    for uid, d in dashlib.dashboards().items():
        for p in dashlib.panels(d):
            if p.get("type") == "row":
                continue
            for t in p.get("targets", []):
                ds = _datasource(t.get("datasource") or p.get("datasource"), "prometheus")
                q = {k: v for k, v in t.items() if k != "datasource"}
                for field in ("expr", "query"):
                    if isinstance(q.get(field), str):
                        q[field] = dashlib.substitute(q[field])
                q.update({"refId": "A", "datasource": ds, "intervalMs": 15000, "maxDataPoints": 200})
                out.append(PanelQuery(f"{uid} / {p['title']} [{ds['type']}]", (uid, p["title"]), q, False))
        for a in d.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            ds = _datasource(a.get("datasource"), "prometheus")
            q = {"refId": "A", "datasource": ds, "expr": dashlib.substitute(a["expr"]), "range": True,
                 "intervalMs": 15000, "maxDataPoints": 200}
            out.append(PanelQuery(f"{uid} / annotation {a['name']}", (uid, f"annotation: {a['name']}"), q, True))
    return out


def run(admin, pq: PanelQuery) -> tuple[str | None, bool]:
    """(error, has_data) of one query through Grafana."""
    status, body = http(f"{URL['grafana']}/api/ds/query", "POST",
                        {"from": "now-15m", "to": "now", "queries": [pq.body]}, auth=admin, timeout=60)
    if not isinstance(body, dict):
        return f"HTTP {status}: {str(body)[:300]}", False
    res = (body.get("results") or {}).get("A", {})
    if status != 200 or res.get("error") or res.get("status", 200) >= 400:
        return f"HTTP {status}: {res.get('error') or str(body)[:300]}", False
    data = any(any(len(col) for col in (f.get("data") or {}).get("values", []) or [])
               for f in res.get("frames", []))
    return None, data


def test_every_panel_query_answers_with_data(stack, admin):
    queries = panel_queries()
    kinds = {q.body["datasource"]["type"] for q in queries}
    assert {"prometheus", "loki", "tempo"} <= kinds, f"query kinds found: {kinds}"
    pending = list(range(len(queries)))
    errors: dict[int, str] = {}
    deadline = time.monotonic() + RETRY_SECONDS
    first = True
    while pending:
        still = []
        for i in pending:
            err, data = run(admin, queries[i])
            errors.pop(i, None)
            if err:
                errors[i] = err
                still.append(i)
            elif not data and not queries[i].annotation:
                still.append(i)
        pending = still
        if first:
            log(f"{len(queries)} queries; failing or empty at first: {[queries[i].where for i in pending]}")
            first = False
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(10)
    empty = [queries[i] for i in pending if i not in errors and queries[i].key not in ALLOWED_EMPTY]
    report = [f"{queries[i].where}: {e}\n    {queries[i].body.get('expr') or queries[i].body.get('query')}"
              for i, e in errors.items()]
    report += [f"{q.where}: no data after {RETRY_SECONDS} s\n    {q.body.get('expr') or q.body.get('query')}"
               for q in empty]
    assert not report, f"{len(report)} of {len(queries)} queries through Grafana:\n" + "\n".join(report)
