"""The simulator as GitHub's webhook sender, on a fake clock with a recording transport: every run and job
transition is delivered once, signed as GitHub signs, in GitHub's payload shape (the bridge's own parser reads
it), with redeliveries under the same id and in_progress held back until after completed."""
from __future__ import annotations

import json

from obs_bridges.github_webhooks import parse_delivery, verify_signature
from obs_bridges.simulator.webhooks import WebhookSender, WebhookTarget
from obs_bridges.simulator.world import World
from tests.support.clock import FakeClock

SECRET = b"sim-unit-secret"


def sender(redeliver=0.0, reorder=0.0):
    clock = FakeClock()
    world = World(seed=7, github_repos=2, history_hours=1, gh_rate=0, vc_rate=0, rw_rate=0, clock=clock)
    posts = []

    def post(url, body, headers):
        posts.append((url, body, headers))
        return 200
    s = WebhookSender(world, WebhookTarget("http://127.0.0.1:1/webhook", "/dev/null", redeliver, reorder),
                      secret=SECRET, post=post)
    clock.advance(100)  # injected runs start in the recent past: after the hook existed
    return s, world, clock, posts


def parsed(posts):
    return [(h["X-GitHub-Event"], parse_delivery(h["X-GitHub-Event"], json.loads(b))) for _, b, h in posts]


def test_each_transition_of_a_run_and_its_jobs_is_delivered_once_signed():
    s, world, clock, posts = sender()
    world.github.inject(world.github.repos[0], 1, "success", "in_progress", finish_in=30)
    s.tick()
    for _ in range(40):
        clock.advance(1)
        s.tick()
    s.tick()
    events = parsed(posts)
    runs = [(d.action, d.run.status) for e, d in events if e == "workflow_run"]
    assert ("in_progress", "in_progress") in runs and runs[-1] == ("completed", "completed")
    assert len(runs) == len(set(runs)), "no transition twice"
    jobs = [(d.job_id, d.action) for e, d in events if e == "workflow_job"]
    assert len(jobs) == len(set(jobs)) and {a for _, a in jobs} >= {"in_progress", "completed"}
    for _, body, h in posts:
        assert verify_signature(SECRET, body, h["X-Hub-Signature-256"])
        assert h["Content-Type"] == "application/json" and h["X-GitHub-Hook-ID"]
    assert len({h["X-GitHub-Delivery"] for _, _, h in posts}) == len(posts)


def test_nothing_before_the_sender_started_is_delivered():
    s, world, clock, posts = sender()
    s.tick()
    assert posts == [], "the back-filled history happened before GitHub knew of the hook"
    world.github.inject(world.github.repos[0], 1, "success", "completed")
    s.tick()
    assert posts, "while a run injected since is"


def test_redeliveries_reuse_the_delivery_id_and_body():
    s, world, clock, posts = sender(redeliver=1.0)
    world.github.inject(world.github.repos[0], 1, "failure", "completed")
    s.tick()
    clock.advance(5)
    s.tick()
    ids = [h["X-GitHub-Delivery"] for _, _, h in posts]
    assert ids and len(ids) == 2 * len(set(ids))
    by_id = {}
    for _, body, h in posts:
        by_id.setdefault(h["X-GitHub-Delivery"], set()).add(body)
    assert all(len(b) == 1 for b in by_id.values())
    assert s.view()["redelivered"] == len(set(ids))


def test_in_progress_can_arrive_after_completed():
    s, world, clock, posts = sender(reorder=1.0)
    world.github.inject(world.github.repos[0], 1, "success", "in_progress", finish_in=10)
    for _ in range(15):
        clock.advance(1)
        s.tick()
    runs = [d.action for e, d in parsed(posts) if e == "workflow_run"]
    assert runs.index("completed") < runs.index("in_progress")
    assert s.view()["reordered"] == 1


def test_a_forged_delivery_does_not_verify_and_a_pause_delays_deliveries():
    s, world, clock, posts = sender()
    world.github.inject(world.github.repos[0], 1, "success", "completed")
    s.special("pause", seconds=30)
    clock.advance(10)
    assert s.tick() == 0 and posts == []
    clock.advance(25)
    assert s.tick() > 0
    posts.clear()
    assert s.special("forged")["status"] == 200
    _, body, h = posts[-1]
    assert not verify_signature(SECRET, body, h["X-Hub-Signature-256"])
    s.special("unsigned")
    assert "X-Hub-Signature-256" not in posts[-1][2]
