"""Dashboard queries as Grafana runs them: each panel target and annotation of the provisioned dashboards
(read with tests/dashboards/dashlib.py) turned into the body Grafana's /api/ds/query takes, run there, and
judged: an error, or whether any frame holds a value (null, Grafana's encoding of NaN, is no value: a stat
shows "No data")."""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass

from tests.dashboards import dashlib
from tests.docker.composectl import http

FIXED_UID = {"prometheus": "prometheus", "loki": "loki", "tempo": "tempo", "alertmanager": "alertmanager"}
RANGE_SECONDS = 900  # now-15m .. now, as the dashboards open
# Grafana versions whose Tempo backend refuses TraceQL *search* on /api/ds/query (the browser runs it through
# the datasource proxy, pkg/tsdb/tempo/traceql_query.go): then the panel runs the way the browser does.
TEMPO_BACKEND_REFUSES = ("search queries are not supported", "unsupported query type")


@dataclass
class PanelQuery:
    where: str
    key: tuple[str, str]   # (dashboard uid, panel title or "annotation: name"), as ALLOWED_EMPTY names it
    body: dict
    annotation: bool

    @property
    def kind(self) -> str:
        return self.body["datasource"]["type"]

    @property
    def text(self) -> str:
        return self.body.get("expr") or self.body.get("query") or ""


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


def frames_have_data(frames: list[dict]) -> bool:
    """Whether a data frame (Grafana's JSON encoding) holds one non-null value outside its time fields."""
    for f in frames or []:
        fields = (f.get("schema") or {}).get("fields") or []
        values = (f.get("data") or {}).get("values") or []
        for i, col in enumerate(values):
            if i < len(fields) and fields[i].get("type") == "time":
                continue
            if any(v is not None for v in col or []):
                return True
    return False


def run(grafana: str, admin: tuple[str, str], pq: PanelQuery) -> tuple[str | None, bool]:
    """(error, has_data) of one query through Grafana's /api/ds/query."""
    status, body = http(f"{grafana}/api/ds/query", "POST",
                        {"from": f"now-{RANGE_SECONDS // 60}m", "to": "now", "queries": [pq.body]}, auth=admin,
                        timeout=60)
    res = ((body.get("results") or {}).get("A") or {}) if isinstance(body, dict) else {}
    err = None
    if status != 200 or res.get("error") or res.get("status", 200) >= 400:
        err = f"HTTP {status}: {res.get('error') or str(body)[:300]}"
    if err and pq.kind == "tempo" and any(s in err for s in TEMPO_BACKEND_REFUSES):
        return tempo_search_via_proxy(grafana, admin, pq)
    if err:
        return err, False
    return None, frames_have_data(res.get("frames", []))


def tempo_search_via_proxy(grafana: str, admin: tuple[str, str], pq: PanelQuery) -> tuple[str | None, bool]:
    """A TraceQL search as Grafana's frontend sends it: Tempo's /api/search through the datasource proxy."""
    end = int(time.time())
    params = {"q": pq.text, "limit": pq.body.get("limit", 20), "start": end - RANGE_SECONDS, "end": end}
    if pq.body.get("spss"):
        params["spss"] = pq.body["spss"]
    status, body = http(f"{grafana}/api/datasources/proxy/uid/{pq.body['datasource']['uid']}/api/search?"
                        + urllib.parse.urlencode(params), auth=admin, timeout=60)
    if status != 200 or not isinstance(body, dict):
        return f"HTTP {status} (datasource proxy /api/search): {str(body)[:300]}", False
    return None, bool(body.get("traces"))
