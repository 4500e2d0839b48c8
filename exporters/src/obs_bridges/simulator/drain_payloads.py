"""What the platforms' drains push, in their real shapes, for the simulator's drain sender (drains.py). Pure:
a seeded Random in, records and bodies out.

- Vercel log drain records (fields as obs_bridges.vercel_drain reads them, Vercel's Log Drains reference).
- Vercel Speed Insights records (`vercel.speed_insights.v1`: projectId but no project name).
- Supabase log events as Logflare holds them (event_message, timestamp in microseconds, metadata), and the
  two drain bodies Logflare makes of them (github.com/Logflare/logflare @ e9444de, lib/logflare/backends/adaptor/
  otlp_adaptor/protobuf_formatter.ex and loki_adaptor.ex):
  OTLP ExportLogsServiceRequest protobuf (one ResourceLogs per source: service.name = source name,
  service.namespace = project ref; scope "Logflare"; event_name = the message; body = the rest as a kvlist;
  severity derived from the event) and a Loki push (stream {source="supabase", service=<source>}, values
  [ns, message, structured metadata flattened with "_"]).
The protobuf is written by a tiny wire-format encoder (varint, fixed64, length-delimited) for just the OTLP
fields used, so the exporters image needs no protobuf package; a unit test decodes it with opentelemetry-proto.
"""

from __future__ import annotations

import json
import math
import random
import struct
import time
import uuid
from typing import Any

LOGFLARE_VERSION = "1.22.4"  # the scope.version Logflare stamps (its release; any string in the real thing)
OTLP_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
VERCEL_SOURCES = [("lambda", 40), ("edge", 20), ("static", 15), ("external", 5), ("build", 10), ("firewall", 5),
                  ("redirect", 5)]
VERCEL_LEVELS = [("info", 80), ("warning", 10), ("error", 8), ("fatal", 2)]
ROUTES = ["/", "/products/[id]", "/blog/[slug]", "/checkout", "/api/cart", "/account/[[...tab]]"]
VITALS = {"LCP": (1800.0, 0.5), "FCP": (1100.0, 0.45), "TTFB": (280.0, 0.6), "INP": (140.0, 0.6),
          "CLS": (0.05, 0.9)}  # median (ms; CLS unitless) and log-normal sigma
# Supabase's log sources (Logflare's source names) and their share of the events.
SUPABASE_SOURCES = [("postgres.logs", 30), ("cloudflare.logs.prod", 25), ("gotrue.logs.prod", 12),
                    ("postgREST.logs.prod", 10), ("storage.logs.prod.2", 6), ("realtime.logs.prod", 5),
                    ("deno-relay-logs", 7), ("pgbouncer.logs.prod", 5)]
PG_SEVERITY = {"PANIC": 21, "FATAL": 21, "ERROR": 17, "WARNING": 13, "NOTICE": 9, "LOG": 9, "INFO": 9}
LEVEL_SEVERITY = {"debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17, "fatal": 21, "panic": 21}


def pick(rng: random.Random, weighted: list[tuple[Any, int]]):
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _hex(rng: random.Random, bits: int) -> str:
    return f"%0{bits // 4}x" % rng.getrandbits(bits)


# ---------------------------------------------------------------------------------------------------- Vercel
def vercel_log_records(rng: random.Random, projects: list[tuple[str, str]], deployments: list, now: float,
                       n: int) -> list[dict]:
    """n log drain records of the world's projects (deployments: the world's VcDeployment list)."""
    out = []
    for _ in range(n):
        pid, pname = rng.choice(projects)
        mine = [d for d in deployments[-200:] if d.project_id == pid]
        dep = rng.choice(mine) if mine else None
        env = "production" if dep is None or dep.target == "production" else "preview"
        source, level = pick(rng, VERCEL_SOURCES), pick(rng, VERCEL_LEVELS)
        ts = int((now - rng.uniform(0, 2)) * 1000)
        host = f"{pname}-{(dep.uid[4:13] if dep else 'a1b2c3d4e')}.vercel.app"
        r = {"id": f"{ts}{rng.getrandbits(40):013d}", "deploymentId": dep.uid if dep else "dpl_" + _hex(rng, 96),
             "source": source, "host": host, "timestamp": ts, "projectId": pid, "projectName": pname,
             "level": level, "environment": env, "type": "stderr" if level in ("error", "fatal") else "stdout"}
        if source == "build":
            r["message"] = rng.choice(["Running build in Washington, D.C., USA (East) – iad1",
                                       "Installing dependencies...", "Compiled successfully",
                                       "Type error: Property 'id' does not exist on type 'never'."])
            r["buildId"] = "bld_" + _hex(rng, 64)
            if dep:
                r["branch"] = dep.branch
        else:
            status = 500 if level in ("error", "fatal") else rng.choice([200, 200, 200, 204, 301, 404])
            path = rng.choice(["/", "/products/42", "/blog/launch", "/api/cart", "/checkout", "/account/orders"])
            r.update({"path": path, "statusCode": status, "requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                      "executionRegion": rng.choice(["iad1", "fra1", "sfo1"]),
                      "proxy": {"method": rng.choice(["GET", "GET", "POST"]), "host": host, "path": path,
                                "statusCode": status, "region": "iad1", "userAgent": ["Mozilla/5.0"],
                                "timestamp": ts - 5}})
            r["message"] = {"lambda": f"{r['proxy']['method']} {path} {status}",
                            "edge": "middleware: geo=US rewrite=false",
                            "firewall": "request blocked by custom rule", "redirect": f"308 -> {path}/",
                            "external": f"fetch https://api.stripe.com/v1/charges {status}"}.get(source, "")
            if level in ("error", "fatal"):
                r["message"] = "Error: connect ECONNREFUSED 10.0.0.7:5432\n    at TCPConnectWrap.afterConnect"
            if source in ("lambda", "edge") and rng.random() < 0.7:
                r["traceId"], r["spanId"] = _hex(rng, 128), _hex(rng, 64)
            if source == "lambda":
                r["entrypoint"] = "api/cart.js" if path.startswith("/api") else "app/[[...slug]]/page.js"
        out.append(r)
    return out


def speed_insights_records(rng: random.Random, projects: list[tuple[str, str]], now: float, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        pid, pname = rng.choice(projects)
        metric = rng.choice(list(VITALS))
        median, sigma = VITALS[metric]
        value = median * math.exp(rng.gauss(0, sigma))
        route = rng.choice(ROUTES)
        path = route.replace("[id]", str(rng.randint(1, 999))).replace("[slug]", rng.choice(["launch", "pricing"])) \
            .replace("[[...tab]]", rng.choice(["", "orders"])).rstrip("/") or "/"
        device = pick(rng, [("desktop", 55), ("mobile", 40), ("tablet", 5)])
        env = pick(rng, [("production", 90), ("preview", 10)])
        ts = now - rng.uniform(0, 5)
        out.append({"schema": "vercel.speed_insights.v1",
                    "timestamp": _iso(ts), "projectId": pid, "ownerId": "team_demo",
                    "deviceId": rng.getrandbits(40), "metricType": metric,
                    "value": round(value, 4 if metric == "CLS" else 1), "origin": f"https://{pname}.example.com",
                    "path": path, "route": route, "country": rng.choice(["US", "DE", "GB", "BR"]),
                    "region": "CA", "city": "San Francisco",
                    "osName": "iOS" if device != "desktop" else "macOS", "osVersion": "17.4",
                    "clientName": "Chrome", "clientType": "browser", "clientVersion": "131.0.0.0",
                    "deviceType": device, "deviceBrand": "Apple", "connectionSpeed": "4g",
                    "browserEngine": "Blink", "browserEngineVersion": "131.0.0.0", "scriptVersion": "1.2.0",
                    "sdkVersion": "1.2.0", "sdkName": "@vercel/speed-insights", "vercelEnvironment": env,
                    "vercelUrl": f"{pname}-{_hex(rng, 36)}.vercel.app", "deploymentId": "dpl_" + _hex(rng, 96)})
    return out


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


# -------------------------------------------------------------------------------------------------- Supabase
def supabase_events(rng: random.Random, ref: str, source: str, now: float, n: int) -> list[dict]:
    """n Logflare events of one Supabase log source of project `ref` (timestamp: Unix microseconds)."""
    out = []
    for _ in range(n):
        ts = int((now - rng.uniform(0, 2)) * 1_000_000)
        ev: dict[str, Any] = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "timestamp": ts, "project": ref}
        if source == "postgres.logs":
            sev = pick(rng, [("LOG", 85), ("WARNING", 8), ("ERROR", 6), ("FATAL", 1)])
            ev["event_message"] = {"LOG": "connection authorized: user=authenticator database=postgres",
                                   "WARNING": "there is no transaction in progress",
                                   "ERROR": 'relation "public.orders" does not exist',
                                   "FATAL": 'password authentication failed for user "postgres"'}[sev]
            ev["identifier"] = ref
            ev["metadata"] = {"host": f"db-{ref}", "parsed": {
                "error_severity": sev, "backend_type": "client backend", "process_id": rng.randint(100, 99999),
                "session_id": f"{_hex(rng, 32)}.{_hex(rng, 16)}", "sql_state_code": "00000" if sev == "LOG" else "42P01",
                "user_name": "authenticator", "database_name": "postgres"}}
        elif source in ("cloudflare.logs.prod", "deno-relay-logs"):
            status = pick(rng, [(200, 85), (201, 5), (404, 6), (500, 4)])
            method = rng.choice(["GET", "GET", "POST", "PATCH"])
            path = rng.choice(["/rest/v1/orders", "/auth/v1/user", "/storage/v1/object/public/a.png",
                               "/functions/v1/hello-world", "/realtime/v1/websocket"])
            ev["event_message"] = f"{method} | {status} | 203.0.113.9 | {_hex(rng, 64)} | " \
                                  f"https://{ref}.supabase.co{path} | node"
            ev["identifier"] = ref
            ev["metadata"] = {"request": {"method": method, "path": path, "host": f"{ref}.supabase.co",
                                          "headers": {"user_agent": "node", "x_client_info": "supabase-js/2.45.0"}},
                              "response": {"status_code": status, "origin_time": rng.randint(3, 400)}}
            if source == "deno-relay-logs":
                ev["metadata"]["function_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
                ev["metadata"]["execution_time_ms"] = rng.randint(5, 900)
        else:
            level = pick(rng, [("info", 85), ("warning", 10), ("error", 5)])
            msg = {"gotrue.logs.prod": {"info": "request completed", "warning": "rate limit exceeded for /token",
                                        "error": "invalid refresh token: token revoked"},
                   "postgREST.logs.prod": {"info": "Listening for notifications on the pgrst channel",
                                           "warning": "Schema cache reload took 2100ms",
                                           "error": "Could not find the table 'public.orderz' in the schema cache"},
                   "storage.logs.prod.2": {"info": "request completed", "warning": "slow upload 8.1s",
                                           "error": "The resource already exists"},
                   "realtime.logs.prod": {"info": "Channel joined", "warning": "Too many channels",
                                          "error": "Replication connection lost"},
                   "pgbouncer.logs.prod": {"info": "stats: 12 xacts/s, 40 queries/s", "warning": "pool full",
                                           "error": "server login failed"}}.get(source, {}).get(level, "event")
            ev["event_message"] = msg
            ev["metadata"] = {"level": level, "host": f"{source.split('.')[0].lower()}-{ref}",
                              "component": source.split(".")[0]}
            if source == "gotrue.logs.prod":
                ev["metadata"].update({"path": "/token", "method": "POST", "status": 400 if level == "error" else 200})
        out.append(ev)
    return out


def severity_of(ev: dict) -> int:
    """Logflare's derivation (protobuf_formatter): Postgres error_severity, else metadata.level, else the
    response status code, else 0 (unspecified)."""
    md = ev.get("metadata") if isinstance(ev.get("metadata"), dict) else {}
    parsed = md.get("parsed") if isinstance(md.get("parsed"), dict) else {}
    if isinstance(parsed.get("error_severity"), str):
        return PG_SEVERITY.get(parsed["error_severity"].upper(), 5 if parsed["error_severity"].upper()
                               .startswith("DEBUG") else 0)
    if isinstance(md.get("level"), str):
        return LEVEL_SEVERITY.get(md["level"].lower(), 0)
    resp = md.get("response") if isinstance(md.get("response"), dict) else {}
    if isinstance(resp.get("status_code"), int):
        return 17 if resp["status_code"] >= 500 else 13 if resp["status_code"] >= 400 else 9
    return 0


def loki_push(events_by_source: dict[str, list[dict]]) -> dict:
    """Logflare's Loki body: a stream per source labelled {source="supabase", service=<source>}; each value
    [ns as a string, event_message, the rest flattened with "_" and stringified]."""
    streams = []
    for source, events in events_by_source.items():
        values = []
        for ev in events:
            meta = {k: v for k, v in _flatten(ev, "_").items() if k not in ("timestamp", "event_message")}
            values.append([str(ev["timestamp"] * 1000), ev.get("event_message") or "", meta])
        streams.append({"stream": {"source": "supabase", "service": source}, "values": values})
    return {"streams": streams}


def _flatten(d: dict, sep: str, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, sep, key))
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v)
    return out


# ------------------------------------------------------------------------- OTLP protobuf (wire format only)
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 -> two's complement, as protobuf writes it
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(num: int, wire: int) -> bytes:
    return _varint((num << 3) | wire)


def _ld(num: int, payload: bytes) -> bytes:  # length-delimited: strings, bytes, messages
    return _field(num, 2) + _varint(len(payload)) + payload


def _fixed64(num: int, n: int) -> bytes:
    return _field(num, 1) + struct.pack("<Q", n)


def any_value(v: Any) -> bytes:
    """common.v1.AnyValue (string 1, bool 2, int 3, double 4, array 5, kvlist 6)."""
    if isinstance(v, bool):
        return _field(2, 0) + _varint(int(v))
    if isinstance(v, int):
        return _field(3, 0) + _varint(v)
    if isinstance(v, float):
        return _field(4, 1) + struct.pack("<d", v)
    if isinstance(v, dict):
        return _ld(6, b"".join(_ld(1, key_value(k, x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return _ld(5, b"".join(_ld(1, any_value(x)) for x in v))
    return _ld(1, str(v).encode())


def key_value(k: str, v: Any) -> bytes:
    return _ld(1, str(k).encode()) + _ld(2, any_value(v))


def log_record(ev: dict, observed_ns: int) -> bytes:
    """logs.v1.LogRecord the way Logflare's default mode builds it from an event."""
    rest = {k: v for k, v in ev.items() if k not in ("timestamp", "event_message", "attributes", "trace_id",
                                                      "span_id", "severity_number", "severity_text")}
    out = _fixed64(1, int(ev["timestamp"]) * 1000)
    sev = severity_of(ev)
    if sev:
        out += _field(2, 0) + _varint(sev)
    out += _ld(5, any_value(rest))
    for key in ("trace_id", "span_id"):
        if isinstance(ev.get(key), str):
            out += _ld(9 if key == "trace_id" else 10, bytes.fromhex(ev[key]))
    out += _fixed64(11, observed_ns)
    if isinstance(ev.get("event_message"), str):
        out += _ld(12, ev["event_message"].encode())
    return out


def export_logs_request(source: str, project_ref: str | None, events: list[dict], observed_ns: int) -> bytes:
    """collector.logs.v1.ExportLogsServiceRequest: one ResourceLogs (this source), one ScopeLogs (Logflare)."""
    attrs = _ld(1, key_value("service.name", source))
    if project_ref:
        attrs += _ld(1, key_value("service.namespace", project_ref))
    scope = _ld(1, b"Logflare") + _ld(2, LOGFLARE_VERSION.encode())
    scope_logs = _ld(1, scope) + b"".join(_ld(2, log_record(ev, observed_ns)) for ev in events)
    resource_logs = _ld(1, attrs) + _ld(2, scope_logs) + _ld(3, OTLP_SCHEMA_URL.encode())
    return _ld(1, resource_logs)
