"""scripts/railway-check against a fake Grafana on 127.0.0.1 answering in Grafana's shapes."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.railway.railwaylib import ROOT

SCRIPT = ROOT / "scripts" / "railway-check"
PASSWORD = "fake-grafana-password-123"


class FakeGrafana:
    def __init__(self):
        self.db = "ok"
        self.failing = set()
        self.up = {"prometheus": [1], "loki": [1], "api": [1, 0]}
        self.seen = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                fake.seen.append((self.path, self.headers.get("Authorization")))
                if self.path == "/api/health":
                    return self.send(200, {"commit": "abc123", "database": fake.db, "version": "13.2.0"})
                auth = self.headers.get("Authorization", "")
                ok = auth == "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode() or auth == "Bearer glsa_t"
                if not ok:
                    return self.send(401, {"message": "Unauthorized"})
                if self.path.startswith("/api/datasources/uid/") and self.path.endswith("/health"):
                    uid = self.path.split("/")[4]
                    if uid in fake.failing:
                        return self.send(400, {"status": "ERROR", "message": f"Post \"http://{uid}.railway.internal\": dial tcp: lookup failed"})
                    return self.send(200, {"status": "OK", "message": "Data source is working"})
                if self.path.startswith("/api/datasources/proxy/uid/prometheus/api/v1/query"):
                    result = [{"metric": {"__name__": "up", "job": j, "instance": f"{j}:{i}"}, "value": [1.7e9, str(v)]}
                              for j, vs in fake.up.items() for i, v in enumerate(vs)]
                    return self.send(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
                return self.send(404, {"message": "Not found"})

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def grafana():
    g = FakeGrafana()
    yield g
    g.close()


def check(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GRAFANA_")}
    e.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=e, timeout=60)


def test_health_only_without_credentials(grafana):
    p = check(grafana.url)
    assert p.returncode == 0, p.stdout
    assert "ok    grafana /api/health" in p.stdout and "datasources not checked" in p.stdout
    assert all(path == "/api/health" for path, _ in grafana.seen)


def test_all_healthy_with_password_file(grafana, tmp_path):
    f = tmp_path / "pw"
    f.write_text(PASSWORD + "\n")
    p = check(grafana.url, "--password-file", str(f))
    assert p.returncode == 0, p.stdout
    for uid in ("prometheus", "loki", "tempo", "alertmanager"):
        assert f"ok    datasource {uid}" in p.stdout
    assert "warn  scrape job api: 1/2 targets up" in p.stdout
    assert PASSWORD not in p.stdout + p.stderr


def test_strict_fails_on_down_targets_and_token_auth(grafana):
    p = check(grafana.url, "--strict", env={"GRAFANA_TOKEN": "glsa_t"})
    assert p.returncode == 1 and "FAIL  scrape job api" in p.stdout
    assert any(a == "Bearer glsa_t" for _, a in grafana.seen)


def test_unhealthy_datasource_fails(grafana):
    grafana.failing = {"tempo"}
    p = check(grafana.url, env={"GRAFANA_PASSWORD": PASSWORD})
    assert p.returncode == 1
    assert "FAIL  datasource tempo: Post" in p.stdout and "ok    datasource loki" in p.stdout


def test_database_not_ok_fails(grafana):
    grafana.db = "failing"
    p = check(grafana.url)
    assert p.returncode == 1 and "FAIL  grafana /api/health" in p.stdout


def test_wrong_password_is_reported(grafana):
    p = check(grafana.url, env={"GRAFANA_PASSWORD": "wrong-password"})
    assert p.returncode == 1 and "credentials were refused" in p.stdout and "wrong-password" not in p.stdout


def test_unreachable_and_usage(grafana):
    grafana.close()
    p = check(grafana.url)
    assert p.returncode == 1 and "FAIL  grafana reachable" in p.stdout
    assert check("ftp://x").returncode == 2
    assert check("https://admin:pw@grafana.example").returncode == 2
