"""Typed per-platform settings (frozen dataclasses on Common.platform_settings, exporter.cfg), the demo
table in config.py that every bridge reads, and the clock each bridge's build passes through."""

import dataclasses
import inspect
from pathlib import Path
from types import MappingProxyType

import pytest

from obs_bridges import config, github, railway, supabase, vercel
from tests.support.clock import FakeClock

LIVE = {
    github: ({"GITHUB_TOKEN": "ghp_unit", "GITHUB_REPOSITORIES": "o/r"}, github.GithubSettings),
    vercel: ({"VERCEL_TOKEN": "vc_unit"}, vercel.VercelSettings),
    railway: ({"RAILWAY_TOKEN": "rw_unit"}, railway.RailwaySettings),
    supabase: ({"SUPABASE_ACCESS_TOKEN": "sbp_unit"}, supabase.SupabaseSettings),
}
DEMO_URL = "http://sim.example:8600/"
BRIDGES = Path(config.__file__).parent


@pytest.mark.parametrize("mod", LIVE, ids=lambda m: m.__name__)
def test_settings_are_a_frozen_dataclass_on_the_exporter(mod):
    env, cls = LIVE[mod]
    c = mod.load_settings(env)
    assert type(c.platform_settings) is cls
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert not hasattr(c, "extra")
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(c.platform_settings, field, None)
    exp = mod.build(env, clock=FakeClock())
    assert isinstance(exp.cfg, cls) and not hasattr(exp, "x")


@pytest.mark.parametrize("exporter, other", [(github.GitHubExporter, vercel), (vercel.VercelExporter, github)])
def test_an_exporter_refuses_another_platforms_settings(exporter, other):
    with pytest.raises(TypeError, match=f"{exporter.__name__} needs settings from {exporter.platform}.load_settings"):
        exporter(other.load_settings(LIVE[other][0]))


def test_the_unused_settings_class_is_gone():
    assert not hasattr(github, "Settings")


def test_defaults():
    g = github.load_settings(LIVE[github][0]).platform_settings
    assert (g.repos, g.orgs, g.branches, g.interval, g.meta_interval, g.lookback, g.per_page, g.use_etags,
            g.max_job_fetches, g.max_tracked_runs) == (("o/r",), (), frozenset({"main", "master", "develop"}),
                                                       60.0, 600.0, 7200.0, 100, True, 100, 50)
    v = vercel.load_settings(LIVE[vercel][0]).platform_settings
    assert (v.team_id, v.projects, v.interval, v.projects_interval, v.lookback, v.limit, v.max_pages) == \
        (None, frozenset(), 60.0, 600.0, 7200.0, 100, 20)
    r = railway.load_settings(LIVE[railway][0]).platform_settings
    assert (r.token_kind, r.interval, r.metrics_interval, r.discovery_interval, r.usage_interval, r.lookback,
            r.page_size) == ("auto", 60.0, 60.0, 600.0, 900.0, 7200.0, 50)
    s = supabase.load_settings(LIVE[supabase][0]).platform_settings
    assert (s.services, s.interval, s.health_interval, s.budget, s.db_interval, s.metrics_template,
            s.db_url.configured) == (tuple(supabase.SERVICES), 60.0, 60.0, 30.0, 30.0, supabase.METRICS_TEMPLATE,
                                     False)


def test_values_from_the_environment():
    g = github.load_settings({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r, my-org, other/*",
                              "GITHUB_REPOSITORIES_EXCLUDE": "my-org/old", "GITHUB_BRANCHES": "trunk",
                              "GITHUB_USE_ETAGS": "no", "GITHUB_PER_PAGE": "7"}).platform_settings
    assert g.repos == ("o/r",) and g.orgs == ("my-org", "other") and g.exclude == {"my-org/old"}
    assert g.branches == {"trunk"} and g.use_etags is False and g.per_page == 7
    assert railway.load_settings({"RAILWAY_TOKEN": "t", "RAILWAY_TOKEN_KIND": "Workspace"}
                                 ).platform_settings.token_kind == "account"
    s = supabase.load_settings({"SUPABASE_ACCESS_TOKEN": "t", "SUPABASE_HEALTH_SERVICES": "db,rest",
                                "SUPABASE_DB_URL": "postgresql://u:p@h/db"}).platform_settings
    assert s.services == ("db", "rest") and s.db_url.configured


@pytest.mark.parametrize("mod, env, message", [
    (github, {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "a/b/c"},
     "GITHUB_REPOSITORIES: 'a/b/c' is neither owner/repo nor an organization name"),
    (github, {"GITHUB_TOKEN": "t"}, "GITHUB_REPOSITORIES is empty: list owner/repo entries"),
    (github, {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r", "GITHUB_POLL_INTERVAL_SECONDS": "0"},
     "GITHUB_POLL_INTERVAL_SECONDS must be between 1 and 86400, got 0"),
    (github, {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r", "GITHUB_PER_PAGE": "many"},
     "GITHUB_PER_PAGE must be an integer, got 'many'"),
    (vercel, {"VERCEL_TOKEN": "t", "VERCEL_MAX_PAGES": "0"}, "VERCEL_MAX_PAGES must be between 1 and 1000, got 0"),
    (railway, {"RAILWAY_TOKEN": "t", "RAILWAY_TOKEN_KIND": "team"},
     "RAILWAY_TOKEN_KIND must be auto, account, workspace or project, got 'team'"),
    (railway, {"RAILWAY_TOKEN": "t", "RAILWAY_LOOKBACK_SECONDS": "60"},
     "RAILWAY_LOOKBACK_SECONDS must be between 300 and 2592000, got 60"),
    (supabase, {"SUPABASE_ACCESS_TOKEN": "t", "SUPABASE_HEALTH_SERVICES": "db,mail"},
     "SUPABASE_HEALTH_SERVICES: unknown service(s) ['mail']; known:"),
    (supabase, {"SUPABASE_ACCESS_TOKEN": "t", "SUPABASE_METRICS_URL_TEMPLATE": "https://x/metrics"},
     "SUPABASE_METRICS_URL_TEMPLATE must contain {ref}"),
    (supabase, {"SUPABASE_ACCESS_TOKEN": "t", "SUPABASE_MAX_REQUESTS_PER_MINUTE": "61"},
     "SUPABASE_MAX_REQUESTS_PER_MINUTE must be between 1 and 60, got 61"),
])
def test_error_messages(mod, env, message):
    with pytest.raises(config.ConfigError) as e:
        mod.load_settings(env)
    assert str(e.value).startswith(message)


# ---------------------------------------------------------------- the demo table

def test_demo_mode_takes_everything_from_the_table():
    env = {config.DEMO_ENV: DEMO_URL}
    base = DEMO_URL.rstrip("/")
    for mod in LIVE:
        c = mod.load_settings(env)
        assert c.demo and c.demo_base == base and c.token.get()[0] == config.DEMO_TOKEN
        assert c.api_url == base + config.DEMO[c.platform].path
    assert github.load_settings(env).platform_settings.orgs == ("demo-org",)
    assert vercel.load_settings(env).platform_settings.team_id == "team_demo"
    assert supabase.load_settings(env).platform_settings.metrics_template == \
        base + "/supabase-metrics/{ref}/customer/v1/privileged/metrics"


def test_the_bridges_read_the_table(monkeypatch):
    table = {p: dataclasses.replace(row, path=f"/moved/{p}") for p, row in config.DEMO.items()}
    table["github"] = dataclasses.replace(table["github"], repositories=("other-org", "o/r"))
    table["vercel"] = dataclasses.replace(table["vercel"], team_id="team_other")
    table["supabase"] = dataclasses.replace(table["supabase"], metrics_template="/m/{ref}")
    monkeypatch.setattr(config, "DEMO", MappingProxyType(table))
    env = {config.DEMO_ENV: DEMO_URL}
    g = github.load_settings(env)
    assert g.api_url == "http://sim.example:8600/moved/github"
    assert (g.platform_settings.repos, g.platform_settings.orgs) == (("o/r",), ("other-org",))
    assert vercel.load_settings(env).platform_settings.team_id == "team_other"
    assert supabase.load_settings(env).platform_settings.metrics_template == "http://sim.example:8600/m/{ref}"
    assert railway.load_settings(env).api_url == "http://sim.example:8600/moved/railway"


def test_explicit_settings_win_over_the_demo_defaults():
    env = {config.DEMO_ENV: DEMO_URL, "VERCEL_TEAM_ID": "team_x", "GITHUB_REPOSITORIES": "a/b",
           "SUPABASE_METRICS_URL_TEMPLATE": "https://{ref}.example/m"}
    assert vercel.load_settings(env).platform_settings.team_id == "team_x"
    assert github.load_settings(env).platform_settings.repos == ("a/b",)
    assert supabase.load_settings(env).platform_settings.metrics_template == "https://{ref}.example/m"


def test_live_mode_has_no_demo_defaults():
    c = vercel.load_settings(LIVE[vercel][0])
    assert not c.demo and c.demo_base is None and c.demo_defaults is None
    with pytest.raises(ValueError):
        c.demo_url("/x")


@pytest.mark.parametrize("name", ["github.py", "vercel.py", "railway.py", "supabase.py", "supabase_tools.py",
                                  "core.py", "httpclient.py", "cli.py"])
def test_no_bridge_knows_the_simulator_itself(name):
    src = (BRIDGES / name).read_text()
    for needle in ("OBS_DEMO_SIMULATOR_URL", "demo-org", "team_demo", "/supabase-metrics", "/railway/graphql"):
        assert needle not in src, f"{name} names {needle}: it belongs in config.DEMO"


# ---------------------------------------------------------------- the clock

@pytest.mark.parametrize("mod", LIVE, ids=lambda m: m.__name__)
def test_build_passes_the_clock_through(mod):
    clock = FakeClock()
    exp = mod.build(LIVE[mod][0], clock=clock)
    assert exp.clock is clock and exp.selfm.ratelimit.clock is clock
    clients = [v for v in vars(exp).values() if type(v).__name__ == "ApiClient"]
    clients += list(getattr(exp, "clients", {}).values())
    assert clients and all(c.clock is clock for c in clients)
    sig = inspect.signature(mod.build).parameters["clock"]
    assert sig.kind is inspect.Parameter.KEYWORD_ONLY
    assert exp.started == clock.t


@pytest.mark.parametrize("mod", LIVE, ids=lambda m: m.__name__)
def test_no_wall_clock_read_outside_the_injected_clock(mod):
    src = inspect.getsource(mod)
    assert "time.time()" not in src


@pytest.mark.parametrize("raw, expected", [("on", True), ("YES", True), (" 1 ", True), ("off", False), ("No", False),
                                           ("0", False), ("", True)])
def test_booleans_follow_the_stacks_one_rule(raw, expected):
    env = {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r", "GITHUB_USE_ETAGS": raw}
    assert github.load_settings(env).platform_settings.use_etags is expected


@pytest.mark.parametrize("raw", ["maybe", "enabled", "2", "ture"])
def test_a_boolean_that_is_neither_is_an_error_naming_the_variable(raw):
    env = {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORIES": "o/r", "GITHUB_USE_ETAGS": raw}
    with pytest.raises(config.ConfigError, match=f"GITHUB_USE_ETAGS must be true or false .*{raw!r}"):
        github.load_settings(env)


def test_the_bridges_and_obs_instrument_share_the_boolean_spellings():
    from obs_instrument import config as instrument_config
    assert (config.TRUE, config.FALSE) == (instrument_config.TRUE, instrument_config.FALSE)
