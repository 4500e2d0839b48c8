"""Static (runs everywhere): the Docker tier's panel queries are every query the dashboards hold (the
native tier's dashlib reading), its allow-list names panels that exist, and its reading of Grafana's data
frames counts a value as data and null (Grafana's NaN: "No data") or a time column alone as none."""
from __future__ import annotations

import pytest

from tests.dashboards import dashlib
from tests.dashboards.test_queries_live import ALLOWED_EMPTY
from tests.docker.grafana_query import frames_have_data, panel_queries


def _frame(*cols, types=("time", "number")):
    return {"schema": {"fields": [{"name": f"f{i}", "type": t} for i, t in enumerate(types)]},
            "data": {"values": list(cols)}}


@pytest.mark.parametrize("frames,want", [
    ([], False),
    ([_frame([], [])], False),
    ([_frame([1, 2], [None, None])], False),                   # NaN only: encoded as null
    ([_frame([1, 2])], False),                                # a time column alone
    ([_frame([1, 2], [None, 0.0])], True),                    # zero is a value
    ([_frame([1], [None]), _frame([1], [3.5])], True),
    ([_frame([{"a": "b"}], [1], ["line"], types=("other", "time", "string"))], True),  # a Loki log line
    ([_frame(["0af7"], ["svc"], types=("string", "string"))], True),                 # Tempo search rows
])
def test_frames_have_data(frames, want):
    assert frames_have_data(frames) is want


def test_panel_queries_are_every_dashboard_query():
    ours = panel_queries()
    theirs = [q for d in dashlib.dashboards().values() for q in dashlib.queries(d)]
    assert len(ours) == len(theirs) > 100
    assert sorted(q.kind for q in ours) == sorted(q.kind for q in theirs)
    assert {q.kind for q in ours} >= {"prometheus", "loki", "tempo"}
    assert not [q.where for q in ours if "$" in q.text.replace("$1", "")], "a variable left in a query"
    assert all(q.body["datasource"]["uid"] in ("prometheus", "loki", "tempo") for q in ours)


def test_allowed_empty_names_panels_that_exist():
    keys = {q.key for q in panel_queries()}
    assert set(ALLOWED_EMPTY) <= keys, set(ALLOWED_EMPTY) - keys
