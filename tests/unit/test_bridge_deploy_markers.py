"""The deploy markers' finish times in the Railway and Vercel bridges (railway_deployment_finished_timestamp_seconds,
vercel_deployment_finished_timestamp_seconds; docs/metrics-contract.md): set with the once-per-deployment
counter, never for seeded history, never moving back."""

from obs_bridges import railway, vercel
from obs_bridges.railway_api import Deployment as RwDeployment
from tests.support.clock import T0, FakeClock


def _samples(exp, name: str) -> dict[tuple, float]:
    return {tuple(s.labels.values()): s.value for m in exp.collect() for s in m.samples if s.name == name}


def _railway():
    exp = railway.build({"RAILWAY_TOKEN": "rw_unit", "RAILWAY_API_URL": "https://railway.example/graphql/v2"},
                        clock=FakeClock())
    exp.projects, exp.envs, exp.services = {"p1": "shop"}, {"e1": "production", "e2": "staging"}, {"s1": "api"}
    exp.env_project = {"e1": "p1", "e2": "p1"}
    exp._observe_steps = lambda items: None  # the steps' GraphQL is not what this tests
    return exp


def test_railway_finish_time_is_the_poll_that_counted_it():
    exp = _railway()
    name = "railway_deployment_finished_timestamp_seconds"
    old = RwDeployment("d0", "SUCCESS", T0 - 600, "s1", "e1")
    exp._process([old], T0)  # the first poll seeds history: no marker for it
    assert _samples(exp, name) == {}
    building = RwDeployment("d1", "BUILDING", T0 + 30, "s1", "e1")
    failed = RwDeployment("d2", "FAILED", T0 + 40, "s1", "e2")
    exp._process([failed, building, old], T0 + 60)
    assert _samples(exp, name) == {("shop", "staging", "api", "FAILED"): T0 + 60}
    done = RwDeployment("d1", "SUCCESS", T0 + 30, "s1", "e1")
    exp._process([failed, done, old], T0 + 120)  # d2 is not counted twice: its time stays
    assert _samples(exp, name) == {("shop", "staging", "api", "FAILED"): T0 + 60,
                                   ("shop", "production", "api", "SUCCESS"): T0 + 120}
    assert exp.deployments_total.labels("shop", "production", "api", "SUCCESS")._value.get() == 1
    again = RwDeployment("d3", "SUCCESS", T0 + 150, "s1", "e1")
    exp._process([again, failed, done, old], T0 + 100)  # a clock that went back never moves a marker back
    assert _samples(exp, name)[("shop", "production", "api", "SUCCESS")] == T0 + 120


def _vercel():
    exp = vercel.build({"VERCEL_TOKEN": "vc_unit", "VERCEL_API_URL": "https://vercel.example"}, clock=FakeClock())
    exp.projects = {"prj_1": "web"}
    return exp


def _vc(uid, state, created, ready=None, target="production"):
    return vercel.Deployment(uid, "web", "prj_1", target, state, created, created + 5, ready)


def test_vercel_finish_time_is_ready_else_the_poll():
    exp = _vercel()
    name = "vercel_deployment_finished_timestamp_seconds"
    exp._process([_vc("a", "READY", T0 - 900, T0 - 800)])  # seeded
    assert _samples(exp, name) == {}
    exp.clock.set(T0 + 60)
    exp._process([_vc("b", "READY", T0, T0 + 45), _vc("c", "ERROR", T0 + 10, target="preview")])
    assert _samples(exp, name) == {("web", "production", "READY"): T0 + 45, ("web", "preview", "ERROR"): T0 + 60}
    # counted later but finished earlier than the current marker: the marker does not move back
    exp.clock.set(T0 + 120)
    exp._process([_vc("d", "READY", T0 - 100, T0 - 50), _vc("b", "READY", T0, T0 + 45)])
    assert _samples(exp, name)[("web", "production", "READY")] == T0 + 45
    exp._process([_vc("e", "READY", T0 + 70, T0 + 110)])
    assert _samples(exp, name)[("web", "production", "READY")] == T0 + 110
