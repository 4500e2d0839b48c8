"""Supabase's request budget: the health interval stretched so that projects + health polls stay within
SUPABASE_MAX_REQUESTS_PER_MINUTE (the Management API allows 60 a minute)."""

import math

import pytest

from obs_bridges import supabase
from tests.support.clock import FakeClock


@pytest.mark.parametrize("projects_interval, n, budget, floor, want", [
    (60.0, 0, 30.0, 60.0, 60.0),  # nothing to poll: the configured interval
    (60.0, 10, 30.0, 60.0, 60.0),  # 10 a minute fit in the 29 left
    (60.0, 40, 30.0, 60.0, 83.0),  # 40 health requests in 29 a minute: every ceil(82.76) s
    (60.0, 40, 30.0, 120.0, 120.0),  # never below the configured interval
    (10.0, 3, 6.0, 1.0, 360.0),  # projects take the whole budget: health keeps 0.5 a minute
    (1.0, 1, 1.0, 1.0, 120.0),  # projects take more than the budget: still 0.5 a minute
])
def test_health_interval(projects_interval, n, budget, floor, want):
    assert supabase.health_interval(projects_interval, n, budget, floor) == want


@pytest.mark.parametrize("projects_interval", [20.0, 60.0, 300.0])
@pytest.mark.parametrize("budget", [5.0, 30.0, 60.0])
@pytest.mark.parametrize("n", [1, 7, 50, 400])
def test_the_fitted_interval_keeps_the_budget(projects_interval, budget, n):
    iv = supabase.health_interval(projects_interval, n, budget, 1.0)
    per_minute = 60.0 / projects_interval + n * 60.0 / iv
    spare = budget - 60.0 / projects_interval
    if spare >= supabase.MIN_HEALTH_REQUESTS_PER_MINUTE:
        assert per_minute <= budget + 1e-9
        # and no slower than needed: one second less would overrun it (the ceil is the only slack)
        assert iv == 1.0 or 60.0 / projects_interval + n * 60.0 / (iv - 1) > budget - 1e-9
    else:
        assert n * 60.0 / iv == pytest.approx(supabase.MIN_HEALTH_REQUESTS_PER_MINUTE, rel=0.01)


def project(ref, status):
    return supabase.Project(ref, ref, "eu", status, "15")


def test_fit_budget_counts_only_projects_whose_health_is_polled():
    exp = supabase.build({"SUPABASE_ACCESS_TOKEN": "sbp_unit", "SUPABASE_API_URL": "https://sb.example",
                          "SUPABASE_MAX_REQUESTS_PER_MINUTE": "10"}, clock=FakeClock())
    assert exp.u_health.interval == 60.0
    polled = [project(f"a{i}", "ACTIVE_HEALTHY") for i in range(18)]
    paused = [project(f"p{i}", "INACTIVE") for i in range(100)]
    exp.projects = polled + paused
    exp._fit_budget()
    # 10 a minute, 1 for the projects list: 18 health requests every ceil(60 * 18 / 9) = 120 s
    assert exp.u_health.interval == 120.0 == math.ceil(60 * 18 / 9)
    exp.projects = polled[:3] + paused
    exp._fit_budget()
    assert exp.u_health.interval == 60.0  # back to the configured interval once they fit
    fams = {m.name: m for m in exp.collect()}
    assert fams["supabase_health_poll_interval_seconds"].samples[0].value == 60.0
