"""The bridges' look-back windows follow the injected clock, not the wall clock."""

from obs_bridges import github, vercel
from obs_bridges.parsing import to_iso
from tests.support.clock import T0, FakeClock


def test_vercel_asks_for_deployments_since_the_clocks_look_back():
    clock = FakeClock()
    exp = vercel.build({"VERCEL_TOKEN": "vc_unit", "VERCEL_API_URL": "https://v.example"}, clock=clock)
    exp.projects = {"prj_1": "web"}
    asked = []

    def get_json(path, endpoint, params=None):
        asked.append(params)
        return {"deployments": [], "pagination": None}, None

    exp.c_deploy.get_json = get_json
    exp.poll_deployments()
    clock.advance(3600)
    exp.poll_deployments()
    assert [p["since"] for p in asked] == [int((T0 - 7200) * 1000), int((T0 + 3600 - 7200) * 1000)]


def test_github_keeps_runs_inside_the_clocks_look_back_and_stops_paging_there():
    clock = FakeClock()
    exp = github.build({"GITHUB_TOKEN": "ghp_unit", "GITHUB_API_URL": "https://gh.example",
                        "GITHUB_REPOSITORIES": "o/r"}, clock=clock)
    pages = []

    def fake_get_all(client, path, endpoint, params, parser, max_pages=50, last_page=lambda page: False):
        runs = parser({"workflow_runs": [
            {"id": i, "created_at": to_iso(T0 - age), "status": "completed", "conclusion": "success"}
            for i, age in ((1, 60), (2, 7000), (3, 7300))]})
        pages.append(last_page(runs))
        return runs

    exp._get_all = fake_get_all
    got = exp._recent_runs("o/r", clock() - exp.cfg.lookback)
    assert [r.id for r in got] == [1, 2] and pages == [True]
    clock.advance(600)  # run 2 (now 7600 s old) has left the window
    got = exp._recent_runs("o/r", clock() - exp.cfg.lookback)
    assert [r.id for r in got] == [1]
