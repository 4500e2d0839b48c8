"""Bad input and faults: nothing crashes, one clear log line, backoff, failure in metrics, last values kept."""

from __future__ import annotations

import time

import pytest

from tests.exporters.bridgetest import wait_for
from tests.support.ports import free_port

SECRET = "ghp_SuperSecretValue_4242"


def gh(procs, token=SECRET, **kw):
    sim = procs.sim("--github-repos", "2")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    env = {"GITHUB_API_URL": sim.url + "/github", "GITHUB_TOKEN": token, "GITHUB_REPOSITORIES": "demo-org",
           "GITHUB_POLL_INTERVAL_SECONDS": "1", "GITHUB_METADATA_INTERVAL_SECONDS": "60"}
    env.update(kw)
    return sim, env


def let_polls_pass(procs, sim, avoid: str, n: int) -> None:
    """Observe n poll intervals (1 s) going by instead of sleeping: a healthy bridge of another platform
    than `avoid` polls the same simulator every second; return once it has completed n fresh polls. A check
    of what the bridge under test did (sim.requests(avoid)) then covers at least n - 1 intervals."""
    if avoid == "github":
        sim.ctl("POST", "ratelimit", {"platform": "supabase", "limit": 100000})
        peer = procs.exporter("supabase", {"SUPABASE_API_URL": sim.url + "/supabase",
                                           "SUPABASE_ACCESS_TOKEN": "sbp_test_123456",
                                           "SUPABASE_POLL_INTERVAL_SECONDS": "1"}, wait_upstream="projects")
        peer.more_polls("projects", n=n)
    else:
        peer = procs.exporter("github", {"GITHUB_API_URL": sim.url + "/github", "GITHUB_TOKEN": SECRET,
                                         "GITHUB_REPOSITORIES": "demo-org", "GITHUB_POLL_INTERVAL_SECONDS": "1",
                                         "GITHUB_METADATA_INTERVAL_SECONDS": "60"}, wait_upstream="runs")
        peer.more_polls("runs", n=n)
    peer.stop()


def assert_secret_nowhere(exp, secret):
    assert secret not in exp.logs()
    assert secret not in exp.metrics_text()
    assert secret not in str(exp.health())


def test_invalid_token_backs_off_and_never_leaks(procs):
    sim, env = gh(procs, token="invalid-" + SECRET)
    exp = procs.exporter("github", env)
    wait_for(lambda: (exp.value("github_exporter_poll_errors_total", reason="auth") or 0) >= 1, 15,
             what="auth error in metrics")
    assert exp.p.poll() is None, "the exporter exited"
    let_polls_pass(procs, sim, "github", 4)  # >= 3 poll intervals
    # two upstreams, one failed request each, then >= 60 s of backoff: no flood
    assert len(sim.requests("github")) <= 4
    assert exp.value("github_up") == 0
    assert exp.value("github_exporter_upstream_up", upstream="runs") == 0
    lines = [ln for ln in exp.log_lines() if ln["level"] == "warning"]
    assert lines and any("GITHUB_TOKEN" in ln["msg"] for ln in lines)
    assert_secret_nowhere(exp, "invalid-" + SECRET)


def test_missing_token_no_demo_serves_and_explains(procs):
    sim, env = gh(procs)
    del env["GITHUB_TOKEN"]
    exp = procs.exporter("github", env)
    wait_for(lambda: (exp.value("github_exporter_poll_errors_total", reason="config") or 0) >= 1, 15,
             what="config error in metrics")
    assert sim.requests("github") == []
    assert any("GITHUB_TOKEN" in ln["msg"] and "GITHUB_TOKEN_FILE" in ln["msg"] for ln in exp.log_lines())


def test_token_file_and_demo_label(procs, tmp_path):
    sim, env = gh(procs)
    del env["GITHUB_TOKEN"]
    f = tmp_path / "token"
    f.write_text(SECRET + "\n")
    env["GITHUB_TOKEN_FILE"] = str(f)
    exp = procs.exporter("github", env, wait_upstream="runs")
    assert exp.value("github_up") == 1
    assert all("demo" not in s.labels for s in exp.samples())
    assert_secret_nowhere(exp, SECRET)
    # demo mode: no token at all, the simulator URL, and every series labelled demo="true"
    env2 = {"OBS_DEMO_SIMULATOR_URL": sim.url, "GITHUB_POLL_INTERVAL_SECONDS": "1"}
    demo = procs.exporter("github", env2, wait_upstream="runs")
    assert all(s.labels.get("demo") == "true" for s in demo.samples())
    assert demo.value("github_exporter_info", mode="demo") == 1
    # an empty secret file (compose mounts it always) still means demo mode
    empty = tmp_path / "empty"
    empty.write_text("")
    demo2 = procs.exporter("github", {**env2, "GITHUB_TOKEN_FILE": str(empty)}, wait_upstream="runs")
    assert demo2.value("github_exporter_info", mode="demo") == 1


@pytest.mark.parametrize("bad", [{"LISTEN_PORT": "abc"}, {"GITHUB_POLL_INTERVAL_SECONDS": "-1"},
                                 {"GITHUB_API_URL": "ftp://x"}, {"GITHUB_REPOSITORIES": "a/b/c"}])
def test_invalid_config_exits_2_with_a_clear_message(procs, bad):
    import subprocess
    import sys

    from tests.exporters.bridgetest import _base_env

    env = _base_env({"GITHUB_TOKEN": SECRET, "GITHUB_REPOSITORIES": "o/r", **bad})
    out = subprocess.run([sys.executable, "-m", "obs_bridges", "github"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert list(bad)[0] in out.stderr
    assert SECRET not in out.stderr


def _steady(procs, **kw):
    sim, env = gh(procs, **kw)
    exp = procs.exporter("github", env, wait_upstream="runs")
    sim.inject("github", repo="demo-org/repo-amber", count=3, state="completed")
    wait_for(lambda: exp.value("github_actions_workflow_runs_total") == 3, 20, what="baseline counted")
    return sim, exp


@pytest.mark.parametrize("kind,reason", [("outage", "network"), ("malformed", "parse"),
                                         ("truncated", "network"), ("wrong_shape", "parse"),
                                         ("unauthorized", "auth")])
def test_fault_keeps_last_values_and_recovers(procs, kind, reason):
    sim, exp = _steady(procs)
    last_ok = exp.value("github_exporter_last_success_timestamp_seconds", upstream="runs")
    count = 1 if kind == "unauthorized" else 6
    sim.fault(platform="github", kind=kind, count=count, path="/actions/runs")
    wait_for(lambda: (exp.value("github_exporter_poll_errors_total", upstream="runs", reason=reason) or 0) >= 1,
             20, what=f"{reason} error")
    assert exp.p.poll() is None
    assert exp.value("github_exporter_upstream_up", upstream="runs") == 0
    assert exp.value("github_actions_workflow_runs_total") == 3, "last good values kept"
    assert any(r.get("fault") == kind for r in sim.requests("github"))
    if kind != "unauthorized":  # an auth failure backs off >= 60 s; the others recover within seconds
        wait_for(lambda: exp.value("github_exporter_upstream_up", upstream="runs") == 1, 40, what="recovery")
        assert exp.value("github_exporter_last_success_timestamp_seconds", upstream="runs") > last_ok


def test_5xx_burst_is_retried_inside_one_poll(procs):
    sim, exp = _steady(procs)
    t0 = time.time()
    sim.fault(platform="github", kind="http5xx", status=503, count=2, path="/actions/runs")
    wait_for(lambda: (exp.value("github_api_requests_total", code="503") or 0) >= 2, 20, what="503s counted")
    wait_for(lambda: exp.polled("runs", t0 + 1), 20, what="a successful poll after the burst")
    assert (exp.value("github_exporter_poll_errors_total") or 0) == 0


def test_retry_after_is_honoured(procs):
    sim, exp = _steady(procs, GITHUB_REPOSITORIES="demo-org/repo-amber")
    sim.fault(platform="github", kind="ratelimit429", retry_after=3, count=1, path="/actions/runs")
    r429 = wait_for(lambda: [r for r in sim.requests("github") if r["status"] == 429], 20, what="the 429")[0]
    nxt = wait_for(lambda: [r for r in sim.requests("github", since=r429["t"] + 0.001)
                            if "/actions/runs" in r["path"]], 20, what="the next request")[0]
    assert nxt["t"] - r429["t"] >= 3.0, "the exporter did not wait Retry-After"
    assert (exp.value("github_exporter_poll_errors_total", reason="ratelimit") or 0) == 1


def test_ratelimit_exhaustion_waits_for_reset(procs):
    sim, exp = _steady(procs, GITHUB_REPOSITORIES="demo-org/repo-amber")
    sim.fault(platform="github", kind="exhaust", duration=4)
    wait_for(lambda: exp.value("github_api_ratelimit_remaining") == 0, 20, what="remaining 0 in metrics")
    first = [r for r in sim.requests("github") if r["status"] == 403][0]
    # Wait for the recovery (the window has reset, a poll succeeded), then count the 403s of the whole
    # exhausted window: a bridge that kept polling while exhausted would have collected one a second.
    wait_for(lambda: exp.value("github_exporter_upstream_up", upstream="runs") == 1, 20, what="recovery")
    assert len([r for r in sim.requests("github") if r["status"] == 403]) <= 2, "kept hammering while exhausted"
    ok = [r for r in sim.requests("github", since=first["t"]) if r["status"] in (200, 304)]
    assert ok and ok[0]["t"] - first["t"] >= 2.5


def test_unreachable_api(procs):
    env = {"GITHUB_API_URL": f"http://127.0.0.1:{free_port()}/github", "GITHUB_TOKEN": SECRET,
           "GITHUB_REPOSITORIES": "o/r", "GITHUB_POLL_INTERVAL_SECONDS": "1", "HTTP_TIMEOUT_SECONDS": "1"}
    exp = procs.exporter("github", env)
    wait_for(lambda: (exp.value("github_exporter_poll_errors_total", reason="network") or 0) >= 1, 20,
             what="network error")
    assert exp.p.poll() is None
    assert exp.health()["upstreams"]["runs"]["last_success_age_seconds"] is None


@pytest.mark.parametrize("platform", ["vercel", "railway", "supabase"])
def test_other_platforms_bad_token_and_outage(procs, platform):
    sim = procs.sim()
    sim.ctl("POST", "ratelimit", {"platform": platform, "limit": 100000})
    url = {"vercel": "/vercel", "railway": "/railway/graphql/v2", "supabase": "/supabase"}[platform]
    var = {"vercel": "VERCEL_TOKEN", "railway": "RAILWAY_TOKEN", "supabase": "SUPABASE_ACCESS_TOKEN"}[platform]
    up = {"vercel": "deployments", "railway": "deployments", "supabase": "projects"}[platform]
    bad = procs.exporter(platform, {f"{platform.upper()}_API_URL": sim.url + url, var: "invalid-" + SECRET,
                                    "VERCEL_TEAM_ID": "team_demo"})
    wait_for(lambda: (bad.value(f"{platform}_exporter_poll_errors_total", reason="auth") or 0) >= 1, 20,
             what="auth error")
    let_polls_pass(procs, sim, platform, 3)  # >= 2 poll intervals
    assert len(sim.requests(platform)) <= 6
    assert any(var in ln["msg"] for ln in bad.log_lines())
    assert_secret_nowhere(bad, "invalid-" + SECRET)
    bad.stop()
    env = {f"{platform.upper()}_API_URL": sim.url + url, var: SECRET, "VERCEL_TEAM_ID": "team_demo",
           f"{platform.upper()}_POLL_INTERVAL_SECONDS": "1"}
    exp = procs.exporter(platform, env, wait_upstream=up)
    sim.fault(platform=platform, kind="outage", count=12)
    wait_for(lambda: (exp.value(f"{platform}_exporter_poll_errors_total", reason="network") or 0) >= 1, 20,
             what="network error")
    wait_for(lambda: exp.value(f"{platform}_exporter_upstream_up", upstream=up) == 1, 30, what="recovery")
    sim.fault(platform=platform, kind="malformed", count=1)
    wait_for(lambda: (exp.value(f"{platform}_exporter_poll_errors_total", reason="parse") or 0) >= 1, 20,
             what="parse error")
    assert exp.p.poll() is None
    assert_secret_nowhere(exp, SECRET)
