"""Annotations on the live stack (livestack.py, shared with test_queries_live.py): every annotation query of
every dashboard runs, and the deploy markers (grafana/dashboards_src/markers.py, docs/dashboards.md "Deploy
markers") show the simulated deployments as Grafana 13.2 draws them: success and failure markers of Railway,
Vercel and GitHub deploy workflows, exactly the label sets the bridges counted, one point per deployment
(never a band) at a time that follows the deployment's finish in the simulated world, and the board's
variables filter them."""
from __future__ import annotations

import math
import re
import time

from tests.dashboards import dashlib
from tests.dashboards.livestack import Live, get_json
from tests.dashboards.test_lint import MARKER_BOARDS, MARKERS

# Per platform: the counter the bridge increments once per finished deployment (the ground truth), the
# labels that name a marker's series, and the status label.
COUNTED = {
    "railway": ("railway_deployments_total", ("project", "environment", "service", "status"), "status"),
    "vercel": ("vercel_deployments_total", ("project", "target", "state"), "state"),
    "github": ('github_actions_workflow_runs_total{workflow=~"(?i).*(deploy|release).*"}',
               ("repo", "workflow", "branch", "conclusion"), "conclusion"),
}
OUTCOME_STATUS = {"success": {"railway": "SUCCESS", "vercel": "READY", "github": "success"},
                  "failure": {"railway": "FAILED|CRASHED", "vercel": "ERROR", "github": "failure|timed_out|startup_failure"}}
# A marker of a poll-time platform lies between the deployment's finish and this much later: the simulator
# injects deployments finished 30 s in the past, the bridges poll every 5 s, Prometheus scrapes every 15 s.
LATE_MAX = 150.0
RETRY_SECONDS = 60.0


def _step(a: dict) -> int:
    m = re.fullmatch(r"(\d+)(s|m)", a["step"])
    assert m, a["step"]
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def grafana_events(result: list, step_ms: int, value_is_time: bool) -> list[dict]:
    """What Grafana 13.2 makes of a Prometheus annotation query (processEvents of @grafana/prometheus's
    annotations, restated): per series, the times of the points whose value is > 0, or with "series value
    as timestamp" the values themselves (milliseconds); consecutive times at most one step apart are one
    event, from the first to the last."""
    out = []
    for s in result:
        times = [math.floor(float(v)) if value_is_time else math.floor(float(t) * 1000)
                 for t, v in s["values"] if value_is_time or float(v) > 0]
        ev = None
        for ts in times:
            if ev and ev["end"] + step_ms >= ts:
                ev["end"] = ts
                continue
            if ev:
                out.append(ev)
            ev = {"time": ts, "end": ts, "labels": s["metric"]}
        if ev:
            out.append(ev)
    return out


def _annotations():
    for uid, d in sorted(dashlib.dashboards().items()):
        for a in d["annotations"]["list"]:
            if not a.get("builtIn"):
                yield uid, a


def _events(live: Live, a: dict, values: dict | None = None) -> list[dict]:
    res = live.prom_range(dashlib.substitute(a["expr"], values), step=_step(a))
    return grafana_events(res, _step(a) * 1000, a["useValueForTime"])


def test_every_annotation_query_executes(live):
    """Every annotation of every dashboard, as Grafana sends it (range query at the annotation's step,
    variables on All); the deploy windows may be empty (no deployment in progress)."""
    n = 0
    for _, a in _annotations():
        live.prom_range(dashlib.substitute(a["expr"]), step=_step(a))
        n += 1
    assert n >= 3 * len(MARKER_BOARDS), n


def test_grafana_events_restatement():
    """The restatement above on Grafana's own cases: a band from > 0 values, points from equal values."""
    band = [{"metric": {}, "values": [[100, "1"], [115, "1"], [130, "0"], [145, "1"]]}]
    assert [(e["time"], e["end"]) for e in grafana_events(band, 15000, False)] == [(100000, 115000), (145000, 145000)]
    pts = [{"metric": {}, "values": [[100, "5000"], [115, "5000"], [130, "90000"], [145, "90000"]]}]
    assert [(e["time"], e["end"]) for e in grafana_events(pts, 15000, True)] == [(5000, 5000), (90000, 90000)]


class World:
    """The simulator's deployments and runs: (platform, key without status) -> finish times (s)."""

    def __init__(self, sim: str):
        self.finished: dict[tuple, list[float]] = {}
        self.ready: dict[tuple, list[float]] = {}
        rw = get_json(f"{sim}/_control/world/railway")
        names = {}
        for p in rw["projects"]:
            names.update({p["id"]: p["name"], **p["envs"], **p["services"]})
        for d in rw["deployments"]:
            if d["steps"]:
                k = ("railway", names[d["project_id"]], names[d["environment_id"]], names[d["service_id"]])
                self.finished.setdefault(k, []).append(d["steps"][-1][2])
        for d in get_json(f"{sim}/_control/world/vercel")["deployments"]:
            if d["ended"] is not None:
                k = ("vercel", d["project"], d["target"])
                self.finished.setdefault(k, []).append(d["ended"])
                self.ready.setdefault(k + (d["state"],), []).append(d["ended"])
        for r in get_json(f"{sim}/_control/world/github")["runs"]:
            branch = r["branch"] if r["branch"] in ("main", "master", "develop") else "other"
            self.finished.setdefault(("github", r["repo"], r["workflow"], branch), []).append(r["finished"])

    def explains(self, platform: str, key: tuple, t: float) -> bool:
        """A deployment of that series finished at the marker's time (Vercel's ready time, to the ms; GitHub's
        updated_at, to the second the API gives) or shortly before it (the poll that counted it)."""
        if platform == "vercel" and key[2] == "READY":
            return any(abs(e - t) < 0.002 for e in self.ready.get(("vercel", *key), []))
        if platform == "github":
            return any(abs(t - f) <= 1.0 for f in self.finished.get((platform, *key[:-1]), []))
        return any(0 <= t - f <= LATE_MAX for f in self.finished.get((platform, *key[:-1]), []))


def _counted(live: Live, platform: str, outcome: str) -> dict[tuple, float]:
    metric, labels, status = COUNTED[platform]
    sel = metric.rstrip("}") + ", " if metric.endswith("}") else metric + "{"
    res = live.prom_instant(f'sum by ({", ".join(labels)}) ({sel}{status}=~"{OUTCOME_STATUS[outcome][platform]}"}})')
    return {tuple(s["metric"][x] for x in labels): float(s["value"][1]) for s in res}


def _marker_problems(live: Live, uid: str, name: str, a: dict, world: World) -> list[str]:
    outcome = MARKERS[name][0]
    events = _events(live, a)
    out = []
    now_ms = time.time() * 1000
    for platform, (_, labels, _) in COUNTED.items():
        mine = [e for e in events if e["labels"].get("platform") == platform]
        counted = _counted(live, platform, outcome)
        where = f"{uid} / {name} / {platform}"
        if not counted:
            out.append(f"{where}: the simulation has no such deployment yet")
            continue
        keys = {tuple(e["labels"].get(x) for x in labels) for e in mine}
        if keys != set(counted):
            out.append(f"{where}: markers for {sorted(keys)}, deployments counted for {sorted(counted)}")
        for e in mine:
            key = tuple(e["labels"].get(x) for x in labels)
            if e["labels"].get("outcome") != outcome:
                out.append(f"{where}: a marker of outcome {e['labels'].get('outcome')}")
            if e["end"] - e["time"] > 60_000:
                out.append(f"{where}: a band of {(e['end'] - e['time']) / 1000:.0f} s for {key}, not a marker")
            if not live.started * 1000 - 300_000 <= e["time"] <= now_ms + 15_000:
                out.append(f"{where}: marker at {e['time']} outside the test's time")
            if not world.explains(platform, key, e["time"] / 1000):
                out.append(f"{where}: no deployment of {key} finished just before its marker at {e['time']}")
        for key, n in counted.items():
            if len([e for e in mine if tuple(e["labels"].get(x) for x in labels) == key]) > n:
                out.append(f"{where}: more markers than the {n:g} deployments counted for {key}")
    return out


def test_deploy_markers_show_the_simulated_deployments(live):
    """Both batches of injected deployments (and the world's own) are counted by now; their markers follow
    within a rule evaluation (GitHub) or a scrape (Railway, Vercel), so an incomplete set is re-read for
    up to RETRY_SECONDS before it fails."""
    todo = [(uid, a) for uid, a in _annotations() if a["name"] in MARKERS]
    assert {uid for uid, _ in todo} == set(MARKER_BOARDS) and len(todo) == 2 * len(MARKER_BOARDS)
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        world = World(live.sim)
        problems = [p for uid, a in todo for p in _marker_problems(live, uid, a["name"], a, world)]
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not problems, "\n".join(problems[:40])


def test_deploy_markers_follow_the_board_variables(live):
    """A board's service variable set to one service shows that service's markers only (on every platform
    it filters); the other platforms keep theirs (their filter is on All)."""
    checked = 0
    for uid, a in _annotations():
        if a["name"] != "Deployments failed":
            continue
        events = _events(live, a)
        for platform, filters in MARKER_BOARDS[uid].items():
            var = filters["service"]
            ours = [e for e in events if e["labels"]["platform"] == platform]
            assert ours, f"{uid}: no {platform} failure marker to filter on"
            service = ours[0]["labels"]["service"]
            got = _events(live, a, {var: service})  # a single value, as Grafana sends it
            for e in got:
                p = e["labels"]["platform"]
                if MARKER_BOARDS[uid][p]["service"] == var:
                    assert e["labels"]["service"] == service, f"{uid}: ${var}={service} shows {e['labels']}"
            assert any(e["labels"]["platform"] == platform for e in got), f"{uid}: ${var}={service} hides it"
            others = {p for p, f in MARKER_BOARDS[uid].items() if f["service"] != var}
            assert others <= {e["labels"]["platform"] for e in got}, f"{uid}: ${var} hid {others}"
            checked += 1
    assert checked == 3 * len(MARKER_BOARDS)
