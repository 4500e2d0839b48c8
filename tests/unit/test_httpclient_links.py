"""The token-leak guard: a pagination link (Link rel="next") to another host, or to the same host over
http, is never followed and the token is never sent there. No sockets: requests goes through a
transport adapter that records what would have been sent."""

import json

import pytest

from obs_bridges import github
from obs_bridges.httpclient import ApiClient, ApiError, next_link
from tests.support.clock import FakeClock
from tests.support.fakehttp import Transport

TOKEN = "ghp_unittoken_0123456789abcdef"
BASE = "https://api.github.example"


def runs_page(ids):
    return json.dumps({"workflow_runs": [{"id": i, "created_at": "2026-01-01T00:00:00Z", "status": "completed",
                                          "conclusion": "success"} for i in ids]}).encode()


def exporter_with(routes):
    exp = github.build({"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": BASE, "GITHUB_REPOSITORIES": "o/r"},
                       clock=FakeClock())
    t = Transport(routes)
    for prefix in ("http://", "https://"):
        exp.runs_client.session.mount(prefix, t)
    return exp, t


def first_page_linking_to(url):
    return {f"{BASE}/repos/o/r/actions/runs?per_page=100":
            (200, {"Link": f'<{url}>; rel="next", <{BASE}/x?page=9>; rel="last"'}, runs_page([1, 2]))}


def test_a_same_host_next_link_is_followed():
    nxt = f"{BASE}/repositories/1/actions/runs?per_page=100&page=2"
    exp, t = exporter_with({**first_page_linking_to(nxt), nxt: (200, {}, runs_page([3]))})
    runs = exp._get_all(exp.runs_client, "/repos/o/r/actions/runs", "runs", {"per_page": 100}, github.parse_runs)
    assert [r.id for r in runs] == [1, 2, 3]
    assert [r.url for r in t.sent] == [f"{BASE}/repos/o/r/actions/runs?per_page=100", nxt]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in t.sent)


@pytest.mark.parametrize("evil", [
    "https://evil.example/steal?page=2",
    "https://api.github.example.evil.example/repos/o/r/actions/runs?page=2",
    "https://api.github.example@evil.example/repos/o/r/actions/runs?page=2",
    "https://api.github.example:8443/repos/o/r/actions/runs?page=2",
    "http://api.github.example/repos/o/r/actions/runs?page=2",  # same host, but the token in clear text
])
def test_a_next_link_to_another_origin_is_refused_and_gets_no_token(evil):
    exp, t = exporter_with({**first_page_linking_to(evil), evil: (200, {}, runs_page([666]))})
    with pytest.raises(ApiError) as e:
        exp._get_all(exp.runs_client, "/repos/o/r/actions/runs", "runs", {"per_page": 100}, github.parse_runs)
    assert e.value.kind == "parse" and "another host" in str(e.value)
    assert [r.url for r in t.sent] == [f"{BASE}/repos/o/r/actions/runs?per_page=100"]
    assert not any(TOKEN in str(v) for r in t.sent[1:] for v in r.headers.values())


def test_the_client_never_asks_for_the_token_for_a_foreign_url():
    asked = []
    c = ApiClient("github", BASE, selfmetrics=None, auth=lambda: asked.append(1) or {"Authorization": TOKEN})
    t = Transport({})
    c.session.mount("https://", t)
    with pytest.raises(ApiError):
        c.request("GET", "https://evil.example/x", "runs")
    assert asked == [] and t.sent == []
    # relative paths and the base origin itself are fine
    assert c.url_for("/repos/o/r") == f"{BASE}/repos/o/r"
    assert c.url_for("repos/o/r") == f"{BASE}/repos/o/r"
    assert c.url_for("") == BASE
    assert c.url_for(f"{BASE}/a?b=1") == f"{BASE}/a?b=1"


@pytest.mark.parametrize("header, want", [
    ('<https://h/a?page=2>; rel="next", <https://h/a?page=5>; rel="last"', "https://h/a?page=2"),
    ('<https://h/a?page=5>; rel="last", <https://h/a?page=2>; rel=next', "https://h/a?page=2"),
    ('<https://h/a?page=1>; rel="prev"', None),
    ('https://h/a?page=2; rel="next"', None),  # no angle brackets: not a link
    ('<https://h/a?page=2>', None),
    ("", None),
    (None, None),
])
def test_next_link(header, want):
    assert next_link(header) == want
