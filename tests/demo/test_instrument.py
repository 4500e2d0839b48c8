"""obs_instrument in-process, with the SDK's in-memory span exporter: spans, labels, logs, SQL, LLM cost."""
from __future__ import annotations

import io
import json
import warnings

import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from obs_instrument import PriceTable, instrument_app
from obs_instrument.db import parse_statement
from obs_instrument.llm import PriceTableError
from obs_instrument.metrics import BoundedValues
from obs_instrument.users import UserHasher

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def setup(tmp_path):
    app = FastAPI()
    engine = create_engine(f"sqlite:///{tmp_path / 'u.sqlite'}", connect_args={"check_same_thread": False})
    with engine.begin() as c:
        c.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_hash TEXT)"))
        c.execute(text("INSERT INTO orders (user_hash) VALUES ('x')"))

    @app.get("/orders/{order_id}")
    def order(order_id: int):
        with engine.connect() as c:
            row = c.execute(text("SELECT id FROM orders WHERE id = :i"), {"i": order_id}).first()
        if row is None:
            raise HTTPException(404)
        return {"id": row[0]}

    @app.get("/boom")
    async def boom():
        raise ValueError("kaput")

    @app.get("/bad-sql")
    def bad_sql():
        with engine.connect() as c:
            c.execute(text("SELECT nope FROM missing_table"))

    exporter, logs = InMemorySpanExporter(), io.StringIO()
    obs = instrument_app(app, service_name="unit", environment="test", engine=engine, span_exporter=exporter,
                         otlp_enabled=False, log_stream=logs, user_id_salt="s1",
                         price_table=PriceTable({"m-1": {"input_per_mtok": 2.0, "output_per_mtok": 10.0}}))
    client = TestClient(app, raise_server_exceptions=False)
    yield app, obs, client, exporter, logs


def spans(obs, exporter):
    obs.tracer_provider.force_flush()
    return exporter.get_finished_spans()


def samples(client, name):
    t = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}).text
    return [s for f in text_string_to_metric_families(t) for s in f.samples if s.name == name]


def test_one_server_span_per_request_with_sql_child(setup):
    app, obs, client, exporter, _ = setup
    assert client.get("/orders/1").status_code == 200
    got = spans(obs, exporter)
    server = [s for s in got if s.kind.name == "SERVER"]
    assert len(server) == 1, [s.name for s in got]  # FastAPI's native telemetry does not add a second one
    sql = [s for s in got if s.kind.name == "CLIENT"]
    assert sql and sql[0].name == "SELECT orders" and sql[0].parent.span_id == server[0].context.span_id
    assert sql[0].attributes["db.collection.name"] == "orders"
    client.get("/metrics")
    client.get("/orders/1", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    got = spans(obs, exporter)
    assert not [s for s in got if "metrics" in s.name], "excluded paths are not traced"
    joined = [s for s in got if s.kind.name == "SERVER" and format(s.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert joined and joined[0].parent.span_id == 0x00f067aa0ba902b7


def test_labels_are_route_templates_and_bounded(setup):
    _, _, client, _, _ = setup
    for i in (1, 2, 3, 999):
        client.get(f"/orders/{i}")
    client.get("/no/such/path/123")
    reqs = {(s.labels["endpoint"], s.labels["status_code"]): s.value for s in samples(client, "http_requests_total")}
    assert reqs[("/orders/{order_id}", "200")] == 1 and reqs[("/orders/{order_id}", "404")] == 3
    assert reqs[("unmatched", "404")] == 1
    assert not [k for k in reqs if "999" in k[0] or "/no/such" in k[0]]


def test_unhandled_exception_is_a_500_with_error_span_and_log(setup):
    _, obs, client, exporter, logs = setup
    assert client.get("/boom").status_code == 500
    s = [x for x in spans(obs, exporter) if x.name == "GET /boom"][0]
    assert s.status.status_code == StatusCode.ERROR and s.attributes["error.type"] == "ValueError"
    assert any(e.name == "exception" for e in s.events)
    assert [x for x in samples(client, "http_requests_total") if x.labels["endpoint"] == "/boom"][0].labels["status_code"] == "500"
    line = [json.loads(x) for x in logs.getvalue().splitlines() if '"GET /boom 500"' in x][0]
    assert line["level"] == "error" and "ValueError" in line["exc"]
    assert line["trace_id"] == format(s.context.trace_id, "032x") and line["span_id"] == format(s.context.span_id, "016x")


def test_sql_errors_and_timings_are_counted(setup):
    _, obs, client, exporter, _ = setup
    client.get("/orders/1")
    assert client.get("/bad-sql").status_code == 500
    q = {(s.labels["operation"], s.labels["table"], s.labels["status"]): s.value for s in samples(client, "database_queries_total")}
    assert q[("SELECT", "orders", "success")] >= 1 and q[("SELECT", "missing_table", "error")] == 1
    assert [s for s in samples(client, "database_errors_total") if s.labels["error_type"] == "OperationalError"]
    assert [s for s in samples(client, "database_query_duration_seconds_count") if s.labels["table"] == "orders"]
    err = [s for s in spans(obs, exporter) if s.name == "SELECT missing_table"][0]
    assert err.status.status_code == StatusCode.ERROR
    pool = {s.name: s.value for s in samples(client, "database_connections_max")}
    assert pool["database_connections_max"] == 15  # QueuePool defaults: 5 + 10 overflow


@pytest.mark.parametrize("sql,want", [
    ("SELECT a FROM items WHERE id = ?", ("SELECT", "items")),
    ('select * from "Users" u join orders o on 1', ("SELECT", "users")),
    ("INSERT INTO chat_log (a) VALUES (?)", ("INSERT", "chat_log")),
    ("UPDATE OR REPLACE items SET a = 1", ("UPDATE", "items")),
    ("DELETE FROM sessions WHERE 1", ("DELETE", "sessions")),
    ("WITH x AS (SELECT 1) SELECT * FROM x", ("SELECT", "x")),
    ("CREATE TABLE IF NOT EXISTS t1 (id int)", ("OTHER", "t1")),
    ("PRAGMA journal_mode=WAL", ("OTHER", "none")),
    ("VACUUM", ("OTHER", "none")),
])
def test_parse_statement(sql, want):
    assert parse_statement(sql) == want


def test_llm_call_tokens_cost_and_unpriced_models(setup):
    _, obs, client, exporter, logs = setup
    with obs.llm_call("chat", "m-1", provider="acme", user_id="bob@example.com") as call:
        call.set_usage(1000, 500, finish_reason="stop")
    with pytest.raises(TimeoutError):
        with obs.llm_call("chat", "m-1", provider="acme") as call:
            raise TimeoutError
    obs.record_llm_usage(operation="embeddings", model="mystery", provider="acme", input_tokens=10,
                         output_tokens=0, duration_seconds=0.1)
    cost = {s.labels["model"]: s.value for s in samples(client, "api_cost_usd_total")}
    toks = {(s.labels["token_type"], s.labels["operation"]): s.value for s in samples(client, "llm_tokens_total")
            if s.labels["model"] == "m-1"}
    assert toks == {("input", "chat"): 1000, ("output", "chat"): 500}
    assert cost["m-1"] == pytest.approx((1000 * 2 + 500 * 10) / 1e6)
    assert "mystery" not in cost
    assert [s.value for s in samples(client, "llm_unpriced_calls_total")] == [1.0]
    dur = {s.labels["error_type"]: s.value for s in samples(client, "gen_ai_client_operation_duration_seconds_count")
           if s.labels["gen_ai_request_model"] == "m-1"}
    assert dur == {"": 1.0, "TimeoutError": 1.0}
    tok = {(s.labels["gen_ai_token_type"], s.labels["gen_ai_operation_name"]): s.value
           for s in samples(client, "gen_ai_client_token_usage_sum")}
    assert tok[("input", "chat")] == 1000 and tok[("output", "chat")] == 500
    s = [x for x in spans(obs, exporter) if x.name == "chat m-1"][0]
    assert s.attributes["gen_ai.usage.output_tokens"] == 500 and s.attributes["user.hash"] == obs.hash_user_id("bob@example.com")
    assert "bob@example.com" not in logs.getvalue()


def test_price_table_config(tmp_path, monkeypatch):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"big": {"input_per_mtok": 15, "output_per_mtok": 75}}))
    monkeypatch.setenv("OBS_LLM_PRICES_FILE", str(f))
    assert PriceTable.from_env().cost("big", 1_000_000, 1_000_000) == 90
    monkeypatch.delenv("OBS_LLM_PRICES_FILE")
    monkeypatch.setenv("OBS_LLM_PRICES", '{"x": {"input_per_mtok": -1}}')
    with pytest.raises(PriceTableError):
        PriceTable.from_env()
    monkeypatch.setenv("OBS_LLM_PRICES", "not json")
    with pytest.raises(PriceTableError):
        PriceTable.from_env()


def test_user_hash_is_keyed_and_stable():
    a, b = UserHasher("salt-a"), UserHasher("salt-b")
    assert a("u1") == a("u1") != a("u2")
    assert a("u1") != b("u1") and len(a("u1")) == 32 and "u1" not in a("u1")


def test_json_log_lines(setup):
    _, _, client, _, logs = setup
    client.get("/orders/1")
    lines = [json.loads(x) for x in logs.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "obs.access"][0]
    assert {"ts", "level", "component", "environment", "logger", "msg", "trace_id", "span_id"} <= set(access)
    assert access["ts"].endswith("Z") and access["component"] == "unit" and access["environment"] == "test"
    assert access["endpoint"] == "/orders/{order_id}" and access["status_code"] == 200
    assert len(access["trace_id"]) == 32 and len(access["span_id"]) == 16


def test_bounded_values():
    b = BoundedValues(2)
    assert [b(x) for x in ["a", "b", "c", "a", "d"]] == ["a", "b", "other", "a", "other"]
