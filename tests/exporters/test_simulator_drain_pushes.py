"""The simulator pushing Vercel and Supabase drains over real HTTP on 127.0.0.1 (issue 16): a tiny receiver in
the test stands in for the ingest and checks every push with the ingest's own code (x-vercel-signature against
the secrets the simulator wrote, the Supabase bearer token against its token file, the Vercel and Speed
Insights parsers), decodes Supabase's OTLP protobuf and Loki JSON, and answers as the ingest would."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from prometheus_client import CollectorRegistry

from obs_bridges import config, vercel_drain
from obs_bridges import vercel_speed_insights as si
from obs_bridges.ingest_settings import match_token, supabase_tokens, vercel_secrets
from tests.exporters.bridgetest import wait_for
from tests.support.ports import free_port


class Receiver:
    """Checks pushes as the ingest does; keeps (path, status, what it decoded) per request."""

    def __init__(self, secret_dir):
        self.env = {"VERCEL_DRAIN_SECRET_FILE": str(secret_dir / "vercel-drain-secret"),
                    "SUPABASE_DRAIN_TOKENS_FILE": str(secret_dir / "supabase-drain-tokens")}
        self.got: list[tuple[str, int, object]] = []
        self.speed = si.SpeedInsights(CollectorRegistry())
        self.lock = threading.Lock()

    def check(self, path: str, headers, body: bytes) -> tuple[int, object]:
        if path.startswith("/vercel/"):
            secrets = vercel_secrets(config.SecretSource(self.env, "VERCEL_DRAIN_SECRET"))
            if not any(vercel_drain.verify_signature(s, body, headers.get("x-vercel-signature")) for s in secrets):
                return 403, None
            if path == "/vercel/logs":
                return 200, vercel_drain.parse_batch(headers.get("Content-Type"), body)
            return 200, self.speed.record(body, headers.get("Content-Type"))
        auth = headers.get("Authorization") or ""
        tokens = supabase_tokens(config.SecretSource(self.env, "SUPABASE_DRAIN_TOKENS"))
        project = match_token(tokens, auth[7:].encode()) if auth.startswith("Bearer ") else None
        if project is None:
            return 401, None
        assert headers.get("Content-Encoding") == "gzip"
        raw = gzip.decompress(body)
        if path == "/supabase/v1/logs":
            assert headers.get("Content-Type") == "application/x-protobuf"
            return 200, (project, ExportLogsServiceRequest.FromString(raw))
        return 204, (project, json.loads(raw))

    def serve(self):
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, decoded = rec.check(self.path, self.headers, body)
                except Exception as e:  # noqa: BLE001 - a push the ingest could not read: recorded, 400
                    status, decoded = 400, repr(e)
                with rec.lock:
                    rec.got.append((self.path, status, decoded))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def by_path(self, path):
        with self.lock:
            return [(st, d) for p, st, d in self.got if p == path]


@pytest.fixture
def receiver(procs):
    r = Receiver(procs.tmp).serve()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_the_simulator_pushes_every_drain_signed_and_authenticated(procs, receiver):
    sim = procs.sim("--vercel-projects", "2", "--supabase-projects", "2", "--drains-url",
                    f"http://127.0.0.1:{receiver.port}", "--drains-secret-dir", str(procs.tmp),
                    "--drains-interval", "0.5", "--drains-batch", "10")
    paths = ("/vercel/logs", "/vercel/speed-insights", "/supabase/v1/logs", "/supabase/loki/api/v1/push")
    wait_for(lambda: all(len(receiver.by_path(p)) >= 2 for p in paths), 20, what="two pushes of every drain")
    for p in paths:
        statuses = {st for st, _ in receiver.by_path(p)}
        assert statuses <= {200, 204}, (p, receiver.by_path(p)[:2])
    logs = [r for _, recs in receiver.by_path("/vercel/logs") for r in recs]
    assert logs and {r.project for r in logs} <= {"web-amber", "web-birch"}
    assert all(n == 10 for _, n in receiver.by_path("/vercel/speed-insights"))
    projects = {proj for _, (proj, _) in receiver.by_path("/supabase/v1/logs")}
    assert projects == {"db-amber", "db-birch"}
    for _, (_, req) in receiver.by_path("/supabase/v1/logs"):
        attrs = {kv.key: kv.value.string_value for kv in req.resource_logs[0].resource.attributes}
        assert attrs["service.name"] and attrs["service.namespace"]
        assert req.resource_logs[0].scope_logs[0].log_records
    for _, (_, push) in receiver.by_path("/supabase/loki/api/v1/push"):
        assert all(s["stream"]["source"] == "supabase" and s["values"] for s in push["streams"])
    counts = sim.ctl("GET", "drains")["counts"]
    for kind in ("vercel-logs", "speed-insights", "supabase-otlp", "supabase-loki"):
        assert counts[kind]["accepted"] >= 2 and counts[kind]["refused"] == counts[kind]["failed"] == 0, counts
    secret_text = (procs.tmp / "vercel-drain-secret").read_text().split()
    assert not any(s in sim.logs() for s in secret_text), "no secret in the simulator's log"


def test_forged_and_unauthenticated_pushes_are_refused_and_counted(procs, receiver):
    sim = procs.sim("--drains-url", f"http://127.0.0.1:{receiver.port}", "--drains-secret-dir", str(procs.tmp),
                    "--drains-interval", "3600")
    wait_for(lambda: receiver.by_path("/supabase/loki/api/v1/push"), 20, what="the first round of pushes")
    assert sim.ctl("POST", "drains", {"kind": "vercel-logs", "auth": "forged"})["statuses"] == [403]
    assert sim.ctl("POST", "drains", {"kind": "speed-insights", "auth": "none"})["statuses"] == [403]
    assert set(sim.ctl("POST", "drains", {"kind": "supabase-otlp", "auth": "forged"})["statuses"]) == {401}
    assert set(sim.ctl("POST", "drains", {"kind": "supabase-loki", "auth": "none"})["statuses"]) == {401}
    assert set(sim.ctl("POST", "drains", {"kind": "supabase-loki", "auth": "valid"})["statuses"]) == {204}
    counts = sim.ctl("GET", "drains")["counts"]
    assert counts["vercel-logs"]["refused"] == 1 and counts["speed-insights"]["refused"] == 1
    assert counts["supabase-otlp"]["refused"] >= 1 and counts["supabase-loki"]["accepted"] >= 2
