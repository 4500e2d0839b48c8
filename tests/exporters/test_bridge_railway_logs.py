"""Railway logs over real HTTP: the Railway bridge (a subprocess) reads environmentLogs from the simulator
(a subprocess, Railway's schema) and ships OTLP/HTTP JSON to a receiver on 127.0.0.1 in this process.
Restarting the bridge mid-stream and taking the collector away for a while must neither lose nor repeat a
record: what arrived is compared, as a multiset, with every record the simulator serves for the span."""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from obs_bridges.railway_logs_state import STATE_FILE, format_ts
from tests.exporters.bridgetest import http
from tests.support.ports import free_port
from tests.support.wait import wait_for

TOKEN = "rw_account_token_123"


class OtlpJsonReceiver:
    """POST /v1/logs with OTLP/JSON (what otlp_logs.OtlpLogSender sends); keeps every record with its resource
    attributes. stop() closes the socket (a collector that is down), start() binds the same port again."""

    def __init__(self):
        self.port = free_port()
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.srv = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        recv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/logs" or self.headers.get("Content-Type") != "application/json":
                    self.send_response(415)
                    self.end_headers()
                    return
                got = []
                for rl in json.loads(body)["resourceLogs"]:
                    res = {a["key"]: a["value"]["stringValue"] for a in rl["resource"]["attributes"]}
                    for sl in rl["scopeLogs"]:
                        for r in sl["logRecords"]:
                            got.append({"resource": res, **r})
                with recv.lock:
                    recv.records.extend(got)
                out = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def keys(self) -> list[tuple]:
        with self.lock:
            return [(r["resource"]["project"], r["resource"]["deployment.environment"],
                     r["resource"]["service.name"], int(r["timeUnixNano"]), r["body"]["stringValue"])
                    for r in self.records]


def start(procs, recv, state_dir, **extra):
    sim = procs.sim("--railway-projects", "2")
    return sim, bridge(procs, sim, recv, state_dir, **extra)


def bridge(procs, sim, recv, state_dir, **extra):
    env = {"RAILWAY_API_URL": sim.url + "/railway/graphql/v2", "RAILWAY_TOKEN": TOKEN,
           "RAILWAY_LOGS_OTLP_ENDPOINT": recv.endpoint, "RAILWAY_LOGS_STATE_DIR": str(state_dir),
           "RAILWAY_LOGS_INTERVAL_SECONDS": "1", "RAILWAY_LOGS_LOOKBACK_SECONDS": "20",
           "RAILWAY_LOGS_PAGE_SIZE": "5", "RAILWAY_LOGS_SETTLE_SECONDS": "0", **extra}
    return procs.exporter("railway", env, wait_upstream="logs")


def served(sim, state_dir, since_ns: int) -> list[tuple]:
    """Every record the simulator serves from ``since_ns`` up to each environment's saved cursor, keyed like
    OtlpJsonReceiver.keys() (names from the world view)."""
    world = sim.world("railway")
    state = json.loads((state_dir / STATE_FILE).read_text())["environments"]
    out = []
    for p in world["projects"]:
        for eid, ename in p["envs"].items():
            q = ("query($e: String!, $a: String!, $b: String!) { environmentLogs(environmentId: $e, anchorDate: $a, "
                 "afterDate: $b, afterLimit: 5000, beforeLimit: 0) { timestamp message tags { serviceId } } }")
            st, body = http("POST", sim.url + "/railway/graphql/v2", {"query": q, "variables": {
                "e": eid, "a": format_ts(since_ns), "b": format_ts(state[eid]["ts_ns"])}},
                headers={"Authorization": f"Bearer {TOKEN}"})
            assert st == 200, body
            from obs_bridges.railway_logs_state import parse_ts
            for r in json.loads(body)["data"]["environmentLogs"]:
                out.append((p["name"], ename, p["services"][r["tags"]["serviceId"]], parse_ts(r["timestamp"]),
                            r["message"]))
    return out


def assert_exactly_once(recv, sim, state_dir):
    got = recv.keys()
    dups = [k for k, n in collections.Counter(got).items() if n > 1]
    assert not dups, f"{len(dups)} records shipped twice, e.g. {dups[:3]}"
    since = min(k[3] for k in got)
    want = served(sim, state_dir, since)
    missing = set(want) - set(got)
    assert not missing, f"{len(missing)} of {len(want)} records never shipped, e.g. {sorted(missing)[:3]}"
    assert len(got) == len(want), (len(got), len(want))
    return got


def test_restart_mid_stream_ships_every_record_once(procs):
    recv = OtlpJsonReceiver()
    recv.start()
    state_dir = procs.tmp / "rw-logs"
    state_dir.mkdir()
    try:
        sim, exp = start(procs, recv, state_dir)
        wait_for(lambda: len(recv.keys()) >= 40, 30, what="40 records shipped")
        before = len(recv.keys())
        exp.stop()  # SIGTERM mid-stream: lines keep coming while it is gone
        exp2 = bridge(procs, sim, recv, state_dir)
        wait_for(lambda: len(recv.keys()) >= before + 30, 30, what="30 more records after the restart")
        exp2.more_polls("logs", 2)
        exp2.stop()
        got = assert_exactly_once(recv, sim, state_dir)
        # the shared design: bounded resource attributes only, ids as record attributes, trace ids kept
        with recv.lock:
            recs = list(recv.records)
        assert {tuple(sorted(r["resource"])) for r in recs} == {
            ("deployment.environment", "level", "platform", "project", "service.name", "source")}
        assert {r["resource"]["platform"] for r in recs} == {"railway"}
        assert {r["resource"]["source"] for r in recs} == {"deploy"}
        assert {r["resource"]["level"] for r in recs} <= {"debug", "info", "warning", "error"}
        assert any(r.get("traceId") for r in recs) and all(len(r.get("traceId", "x" * 32)) == 32 for r in recs)
        assert all(any(a["key"] == "railway.deployment.id" for a in r["attributes"]) for r in recs)
        assert len({k[1] for k in got}) == 2 and len({k[2] for k in got}) == 3
    finally:
        recv.stop()


def test_collector_outage_loses_nothing(procs):
    recv = OtlpJsonReceiver()
    recv.start()
    state_dir = procs.tmp / "rw-logs"
    state_dir.mkdir()
    try:
        sim, exp = start(procs, recv, state_dir)
        wait_for(lambda: len(recv.keys()) >= 20, 30, what="20 records shipped")
        recv.stop()
        wait_for(lambda: (exp.value("railway_logs_errors_total", reason="collector") or 0) >= 2, 30,
                 what="two polls refused by the collector")
        assert not exp.upstream_ok("logs")
        n = len(recv.keys())
        recv.start()
        wait_for(lambda: exp.upstream_ok("logs") and len(recv.keys()) > n + 10, 60,
                 what="the backlog shipped after the collector is back")
        exp.more_polls("logs", 2)
        wait_for(lambda: exp.value("railway_logs_records_shipped_total") == len(recv.keys()), 10,
                 what="records_shipped_total to equal what the receiver took")
        assert exp.value("railway_logs_last_success_timestamp_seconds") > 0
        assert exp.value("railway_logs_cursor_lag_seconds") is not None
        exp.stop()
        got = assert_exactly_once(recv, sim, state_dir)
        assert len(got) > n + 10
    finally:
        recv.stop()
