"""Railway logs (obs_bridges/railway_logs.py, railway_logs_state.py): the cursor, ties at one timestamp,
resume after a restart, no advance when the collector refuses, the mapping to the shared log design, the
bounds. Injected clock, an in-memory API that answers like environmentLogs (documents validated against the
simulator's schema), a fake sender: no sockets."""

from __future__ import annotations

import json
import os

import graphql
import pytest
from graphql.execution.values import get_variable_values

from obs_bridges import config, railway
from obs_bridges.otlp_logs import OtlpSendError
from obs_bridges.railway_logs import (ATTR_VALUE_MAX, ENVS_PER_DOCUMENT, MAX_RECORD_ATTRIBUTES, MIN_REQUEST_SPACING,
                                      logs_document, parse_logs, to_record)
from obs_bridges.railway_logs_state import (STATE_FILE, Cursor, Raw, StateFile, format_ts, parse_ts, take_new)
from obs_bridges.simulator.railway_gql import SCHEMA
from tests.support.clock import FakeClock

NS = 1_000_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def raw(ts_ns, msg="m", sev="info", attrs=(), svc="s1"):
    return Raw(ts_ns, msg, sev, tuple(attrs), {"serviceId": svc, "deploymentId": "d1"})


# ---------------------------------------------------------------- cursor (pure)

def test_timestamps_round_trip_at_nanoseconds():
    ns = parse_ts("2026-01-01T00:00:01.123456789Z")
    assert ns == 1_767_225_601_123_456_789
    assert format_ts(ns) == "2026-01-01T00:00:01.123456789Z"
    assert parse_ts("2026-01-01T01:00:01.5+01:00") == 1_767_225_601_500_000_000
    assert parse_ts("2026-01-01T00:00:01Z") == 1_767_225_601 * NS
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", 17, None):
        assert parse_ts(bad) is None


def test_take_new_orders_and_moves_the_cursor():
    recs = [raw(30), raw(10), raw(20)]
    new, cur, dup = take_new(Cursor(0), recs)
    assert [r.ts_ns for r in new] == [10, 20, 30] and dup == 0
    assert cur.ts_ns == 30 and len(cur.ids) == 1
    again, cur2, dup2 = take_new(cur, recs)  # the same page again (anchor inclusive): nothing new
    assert again == [] and cur2 == cur and dup2 == 3


def test_ties_at_one_timestamp_are_shipped_once_each():
    a, b, c = raw(50, "a"), raw(50, "b"), raw(50, "c")
    new, cur, _ = take_new(Cursor(0), [raw(40), a, b])  # the page ended between b and c
    assert [r.message for r in new] == ["m", "a", "b"] and cur.ts_ns == 50 and len(cur.ids) == 2
    new2, cur2, dup = take_new(cur, [a, b, c, raw(60)])  # next read from 50 inclusive
    assert [r.message for r in new2] == ["c", "m"] and dup == 2
    assert cur2.ts_ns == 60


def test_identical_lines_at_one_timestamp_stay_two_records():
    same = [raw(70, "x"), raw(70, "x")]
    new, cur, _ = take_new(Cursor(0), same[:1])
    assert len(new) == 1
    new2, cur2, dup = take_new(cur, same)
    assert len(new2) == 1 and dup == 1  # the second copy is a record of its own
    assert take_new(cur2, same)[0] == []


def test_records_before_the_cursor_are_dropped():
    new, _, dup = take_new(Cursor(100), [raw(99), raw(100), raw(101)])
    assert [r.ts_ns for r in new] == [100, 101] and dup == 1


# ---------------------------------------------------------------- mapping

def test_to_record_maps_level_trace_and_attributes():
    r = Raw(5, "boom", "info", (("level", '"error"'), ("trace_id", json.dumps(TRACE.upper())),
                                ("span_id", json.dumps(SPAN)), ("user", '"u1"'), ("n", "3")),
            {"serviceId": "s1", "deploymentId": "dep1", "deploymentInstanceId": "inst1"})
    level, rec = to_record(r)
    assert level == "error"  # the structured level wins over the stream's severity
    assert rec.trace_id == TRACE and rec.span_id == SPAN
    assert rec.attributes == {"user": "u1", "n": "3", "railway.deployment.id": "dep1",
                              "railway.deployment_instance.id": "inst1"}
    assert rec.body == "boom" and rec.time_ns == 5


@pytest.mark.parametrize("sev, level", [("err", "error"), ("warn", "warning"), ("info", "info"),
                                        ("debug", "debug"), (None, "unknown"), ("weird", "unknown")])
def test_severity_is_normalised(sev, level):
    assert to_record(raw(1, sev=sev))[0] == level


def test_bad_trace_ids_stay_attributes_and_attributes_are_bounded():
    attrs = [("trace_id", '"not-hex"'), ("span_id", '"00000000000000000"')]
    attrs += [(f"k{i}", '"' + "v" * 2000 + '"') for i in range(40)]
    _, rec = to_record(raw(1, attrs=attrs))
    assert rec.trace_id is None and rec.span_id is None
    assert rec.attributes["trace_id"] == "not-hex"
    railway_attrs = [k for k in rec.attributes if not k.startswith("railway.")]
    assert len(railway_attrs) == MAX_RECORD_ATTRIBUTES
    assert max(len(v) for v in rec.attributes.values()) == ATTR_VALUE_MAX


def test_parse_logs_refuses_a_bad_timestamp():
    with pytest.raises(Exception, match="timestamp"):
        parse_logs([{"timestamp": "soon", "message": "x", "attributes": []}])


def test_the_document_is_valid_against_the_schema():
    q, v = logs_document([("e1", 10 * NS), ("e2", 20 * NS)], 500, 30 * NS)
    ast = graphql.parse(q)
    assert not graphql.validate(SCHEMA, ast)
    op = ast.definitions[0]
    assert not isinstance(get_variable_values(SCHEMA, op.variable_definitions, v), list)
    assert v["a1"] == format_ts(20 * NS) and v["n"] == 500


# ---------------------------------------------------------------- the poller, against an in-memory API

class FakeApi:
    """environmentLogs over in-memory lines: from the anchor inclusive, oldest first, up to afterLimit, not after
    afterDate. Records every request."""

    def __init__(self):
        self.lines: dict[str, list[Raw]] = {}
        self.requests = 0

    def add(self, eid, ts_ns, msg, svc="s1", sev="info"):
        self.lines.setdefault(eid, []).append(Raw(ts_ns, msg, sev, (), {"serviceId": svc, "deploymentId": "d1"}))

    def gql(self, client, endpoint, query, variables=None, kind=None):
        assert endpoint == "logs"
        assert not graphql.validate(SCHEMA, graphql.parse(query))
        self.requests += 1
        out, i = {}, 0
        while f"e{i}" in variables:
            anchor, upto, n = parse_ts(variables[f"a{i}"]), parse_ts(variables["upto"]), variables["n"]
            recs = sorted((r for r in self.lines.get(variables[f"e{i}"], []) if anchor <= r.ts_ns <= upto),
                          key=lambda r: r.ts_ns)[:n]
            out[f"l{i}"] = [{"timestamp": format_ts(r.ts_ns), "message": r.message, "severity": r.severity,
                             "attributes": [], "tags": dict(r.tags)} for r in recs]
            i += 1
        return out


class FakeSender:
    def __init__(self):
        self.batches = []
        self.down = False

    def send(self, groups):
        if self.down:
            raise OtlpSendError("the collector at http://c/v1/logs is unreachable (ConnectionError)")
        self.batches.append(groups)
        return sum(len(v) for v in groups.values())

    def messages(self):
        return [r.body for g in self.batches for recs in g.values() for r in recs]


def bridge(tmp_path, clock, api, sender, **env):
    e = {"RAILWAY_TOKEN": "rw_unit", "RAILWAY_API_URL": "https://railway.example/graphql/v2",
         "RAILWAY_LOGS_OTLP_ENDPOINT": "http://collector.example:4318", "RAILWAY_LOGS_STATE_DIR": str(tmp_path),
         "RAILWAY_LOGS_PAGE_SIZE": "3", "RAILWAY_LOGS_SETTLE_SECONDS": "0", "RAILWAY_LOGS_LOOKBACK_SECONDS": "60"}
    e.update(env)
    exp = railway.build(e, clock=clock)
    exp.projects, exp.envs, exp.env_project = {"p1": "shop"}, {"e1": "production", "e2": "staging"}, \
        {"e1": "p1", "e2": "p1"}
    exp.services = {"s1": "api", "s2": "worker"}
    exp.gql = api.gql
    poller = exp.log_poller
    poller.sender = sender
    poller.slept = []
    poller.sleep = poller.slept.append  # the request spacing, recorded instead of waited
    poller.monotonic = lambda: 0.0
    return exp, poller


def test_poll_pages_until_caught_up_and_maps_resources(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    for k in range(7):
        api.add("e1", t - (30 - k) * NS, f"e1-{k}", svc="s1" if k % 2 else "s2", sev="err" if k == 3 else "info")
    api.add("e2", t - 10 * NS, "e2-0")
    api.add("e1", t - 120 * NS, "too old")  # before the look-back
    exp, poller = bridge(tmp_path, clock, api, sender)
    poller.poll()
    assert sorted(sender.messages()) == sorted([f"e1-{k}" for k in range(7)] + ["e2-0"])
    # page 1 has both environments, pages 2-4 only the full one; each page starts at the last one's newest
    # timestamp (inclusive), so 7 lines at 3 a page take 4 pages
    assert api.requests == 4
    res = {(r.service_name, r.environment, r.platform, r.project, r.source, r.level)
           for g in sender.batches for r in g}
    assert ("api", "production", "railway", "shop", "deploy", "error") in res
    assert ("worker", "production", "railway", "shop", "deploy", "info") in res
    assert ("api", "staging", "railway", "shop", "deploy", "info") in res
    assert poller.shipped.labels("shop", "production")._value.get() == 7
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["environments"]["e1"]["ts_ns"] == t - 24 * NS
    poller.poll()  # nothing new: one request for both environments, nothing sent
    assert api.requests == 5 and len(sender.messages()) == 8


def test_restart_resumes_without_duplicates_or_gaps(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    for k in range(4):
        api.add("e1", t - 20 * NS + k, f"a{k}")  # four lines within nanoseconds
    api.add("e1", t - 10 * NS, "tie-1")
    api.add("e1", t - 10 * NS, "tie-2")
    _, p1 = bridge(tmp_path, clock, api, sender, RAILWAY_LOGS_MAX_PAGES="1")
    p1.poll()  # one page of 3: stops inside the stream
    assert sender.messages() == ["a0", "a1", "a2"]
    # a new process on the same state directory, later, with more lines (one at the tied timestamp)
    clock.advance(30)
    api.add("e1", t - 10 * NS, "tie-3")
    api.add("e1", t + 5 * NS, "after")
    _, p2 = bridge(tmp_path, clock, api, sender)
    p2.poll()
    assert sender.messages() == ["a0", "a1", "a2", "a3", "tie-1", "tie-2", "tie-3", "after"]
    assert p2.duplicates._value.get() >= 1


def test_collector_refusal_keeps_the_cursor(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    api.add("e1", t - 5 * NS, "one")
    exp, poller = bridge(tmp_path, clock, api, sender)
    sender.down = True
    u = next(u for u in exp.upstreams if u.name == "logs")
    exp.poll_once(u)
    assert not u.ok and u.last_error and "cursor kept" in u.last_error
    assert poller.errors.labels("collector")._value.get() == 1
    assert not (tmp_path / STATE_FILE).exists() and poller.cursors == {}
    sender.down = False
    clock.advance(5)
    api.add("e1", t + 1 * NS, "two")
    exp.poll_once(u)
    assert u.ok and sender.messages() == ["one", "two"]


def test_a_full_page_at_one_nanosecond_steps_past_it(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    for k in range(5):
        api.add("e1", t - 5 * NS, f"same-{k}")
    api.add("e1", t - 4 * NS, "later")
    _, poller = bridge(tmp_path, clock, api, sender, RAILWAY_LOGS_MAX_PAGES="5")
    poller.poll()
    assert sender.messages()[:3] == ["same-0", "same-1", "same-2"] and sender.messages()[-1] == "later"
    assert poller.errors.labels("tie_overflow")._value.get() == 1


def test_first_poll_is_bounded_by_the_lookback_and_lag_is_reported(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    api.add("e1", t - 61 * NS, "old")
    api.add("e1", t - 59 * NS, "new")
    exp, poller = bridge(tmp_path, clock, api, sender)
    poller.poll()
    assert sender.messages() == ["new"]
    clock.advance(100)
    lags = {tuple(s.labels.values()): s.value for fam in poller.collect() for s in fam.samples
            if s.name == "railway_logs_cursor_lag_seconds"}
    assert lags[("shop", "production")] == pytest.approx(100.0)  # caught up at the last poll


def test_many_environments_share_requests(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    exp, poller = bridge(tmp_path, clock, api, sender)
    n = ENVS_PER_DOCUMENT * 2 + 1
    exp.envs = {f"e{i}": f"env{i}" for i in range(n)}
    exp.env_project = {f"e{i}": "p1" for i in range(n)}
    poller.poll()
    assert api.requests == 3
    assert poller.slept == [pytest.approx(MIN_REQUEST_SPACING)] * 2  # at most 5 requests a second


def test_settings_errors_name_the_problem(tmp_path):
    base = {"RAILWAY_TOKEN": "x", "RAILWAY_LOGS_OTLP_ENDPOINT": "http://otelcol:4318"}
    with pytest.raises(config.ConfigError, match="RAILWAY_LOGS_STATE_DIR must be set"):
        railway.load_settings(base)
    with pytest.raises(config.ConfigError, match="RAILWAY_LOGS_OTLP_ENDPOINT must be an http"):
        railway.load_settings({**base, "RAILWAY_LOGS_OTLP_ENDPOINT": "otelcol:4318", "RAILWAY_LOGS_STATE_DIR": "/x"})
    with pytest.raises(config.ConfigError, match="RAILWAY_LOGS_PAGE_SIZE must be between 1 and 5000"):
        railway.load_settings({**base, "RAILWAY_LOGS_STATE_DIR": "/x", "RAILWAY_LOGS_PAGE_SIZE": "9000"})
    assert railway.load_settings({"RAILWAY_TOKEN": "x"}).platform_settings.logs is None  # off by default
    missing = tmp_path / "nope"
    with pytest.raises(config.ConfigError, match=f"RAILWAY_LOGS_STATE_DIR \\({missing}\\) is not a directory"):
        railway.build({**base, "RAILWAY_LOGS_STATE_DIR": str(missing)}, clock=FakeClock())


def test_unwritable_state_dir_is_a_clear_error():
    # /proc is a directory in which no process, root included, can create a file
    with pytest.raises(config.ConfigError) as e:
        railway.build({"RAILWAY_TOKEN": "x", "RAILWAY_LOGS_OTLP_ENDPOINT": "http://otelcol:4318",
                       "RAILWAY_LOGS_STATE_DIR": "/proc"}, clock=FakeClock())
    msg = str(e.value)
    assert "RAILWAY_LOGS_STATE_DIR (/proc) is not writable" in msg and "uid" in msg and "10001" in msg


def test_a_corrupt_state_file_is_a_clear_error(tmp_path):
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(config.ConfigError, match="remove it to start again"):
        railway.build({"RAILWAY_TOKEN": "x", "RAILWAY_LOGS_OTLP_ENDPOINT": "http://otelcol:4318",
                       "RAILWAY_LOGS_STATE_DIR": str(tmp_path)}, clock=FakeClock())


def test_state_file_round_trip_is_atomic(tmp_path):
    sf = StateFile(str(tmp_path))
    sf.save({"e1": Cursor(5, frozenset({"a.0"}))})
    assert sf.load() == {"e1": Cursor(5, frozenset({"a.0"}))}
    assert sorted(os.listdir(tmp_path)) == [STATE_FILE]  # no temporary file left behind


def test_the_hourly_request_budget_is_kept(tmp_path):
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    for k in range(30):
        api.add("e1", t - 50 * NS + k * NS, f"l{k}")
    _, poller = bridge(tmp_path, clock, api, sender, RAILWAY_LOGS_MAX_REQUESTS_PER_HOUR="4",
                       RAILWAY_LOGS_MAX_PAGES="100")
    poller.poll()  # 30 lines at 3 a page would take 15 requests: 4 are allowed
    assert api.requests == 4 and poller.errors.labels("budget")._value.get() == 1
    shipped = len(sender.messages())
    clock.advance(1800)
    poller.poll()  # still inside the hour: nothing sent
    assert api.requests == 4 and len(sender.messages()) == shipped
    clock.advance(1801)  # the first requests left the sliding hour: it resumes where it stopped
    poller.poll()
    assert api.requests == 8
    assert sender.messages() == [f"l{k}" for k in range(len(sender.messages()))]


def test_large_pages_go_in_bounded_batches_and_a_failed_batch_resumes_exactly(tmp_path, monkeypatch):
    from obs_bridges import railway_logs
    monkeypatch.setattr(railway_logs, "SEND_MAX_RECORDS", 2)
    clock, api, sender = FakeClock(), FakeApi(), FakeSender()
    t = int(clock() * NS)
    for k in range(5):
        api.add("e1", t - 30 * NS + (k // 2) * NS, f"l{k}")  # pairs share a timestamp: 0-1, 2-3, 4

    calls = []

    def flaky(groups):  # the collector takes the first batch and refuses the second
        calls.append(sum(len(v) for v in groups.values()))
        if len(calls) == 2:
            raise OtlpSendError("the collector at http://c/v1/logs answered 503")
        return FakeSender.send(sender, groups)

    exp, poller = bridge(tmp_path, clock, api, sender, RAILWAY_LOGS_PAGE_SIZE="10")
    poller.sender = type("S", (), {"send": staticmethod(flaky)})()
    u = next(u for u in exp.upstreams if u.name == "logs")
    exp.poll_once(u)
    assert not u.ok and sender.messages() == ["l0", "l1"] and calls == [2, 2]
    assert json.loads((tmp_path / STATE_FILE).read_text())["environments"]["e1"]["ts_ns"] == t - 30 * NS
    exp.poll_once(u)  # batches of at most 2: [l2, l3], [l4]
    assert u.ok and sender.messages() == ["l0", "l1", "l2", "l3", "l4"] and calls == [2, 2, 2, 1]


# ---------------------------------------------------------------- the simulator's environmentLogs

def _sim_world():
    from obs_bridges.simulator.world import World
    clock = FakeClock()
    return World(seed=7, github_repos=0, vercel_projects=0, railway_projects=2, supabase_projects=0,
                 history_hours=1.0, clock=clock), clock


def _query(w, scope, eid, anchor_ns, upto_ns, limit):
    from obs_bridges.simulator import railway_gql
    q, v = logs_document([(eid, anchor_ns)], limit, upto_ns)
    out = railway_gql.execute(w, scope, {"query": q, "variables": v})
    return out.get("errors"), (out.get("data") or {}).get("l0")


def test_simulator_logs_are_deterministic_and_paged_from_the_anchor():
    w, clock = _sim_world()
    eid = w.railway.projects[0]["envs"][0][0]
    now = int(clock() * NS)
    errs, whole = _query(w, {"kind": "account"}, eid, now - 600 * NS, now, 5000)
    assert not errs and len(whole) > 100
    assert _query(w, {"kind": "account"}, eid, now - 600 * NS, now, 5000)[1] == whole  # same records again
    ts = [parse_ts(x["timestamp"]) for x in whole]
    assert ts == sorted(ts) and len(set(ts)) < len(ts)  # oldest first, some ties (multi-line writes)
    assert {x["severity"] for x in whole} >= {"info", "warn", "err"}
    assert any(a["key"] == "trace_id" for x in whole for a in x["attributes"])
    _, page = _query(w, {"kind": "account"}, eid, ts[10], now, 7)  # anchor inclusive, afterLimit honoured
    assert page == whole[whole.index(next(x for x in whole if parse_ts(x["timestamp"]) == ts[10])):][:7]
    clock.advance(30)  # time moves: the past stays as it was
    assert _query(w, {"kind": "account"}, eid, now - 600 * NS, now, 5000)[1] == whole


def test_simulator_logs_respect_retention_and_token_scope():
    w, clock = _sim_world()
    p = w.railway.projects[0]
    now = int(clock() * NS)
    _, old = _query(w, {"kind": "account"}, p["envs"][0][0], now - 3 * 3600 * NS, now - 2 * 3600 * NS, 100)
    assert old == []  # before the world's history: what the API no longer keeps
    scope = {"kind": "project", "projectId": p["id"], "environmentId": p["envs"][0][0]}
    errs, _ = _query(w, scope, p["envs"][1][0], now - 60 * NS, now, 10)
    assert errs and "Not Authorized" in errs[0]["message"]
    errs, _ = _query(w, {"kind": "account"}, "no-such-env", now - 60 * NS, now, 10)
    assert errs and "Environment not found" in errs[0]["message"]
