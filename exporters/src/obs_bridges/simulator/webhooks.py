"""The simulator as GitHub's webhook sender: workflow_run and workflow_job deliveries for the world's runs, in
GitHub's payload shape and headers, signed with X-Hub-Signature-256 under a random per-start secret (written to
a file for the receiver). Like GitHub it does not retry a failed delivery; unlike a perfect network it
redelivers some deliveries (same X-GitHub-Delivery) and sends some `in_progress` after their `completed`.
The control API reads its log, and has it send a forged or unsigned delivery, a ping or a redelivery."""

from __future__ import annotations

import json
import random
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from obs_bridges import github_webhooks, log
from obs_bridges.files import write_atomic
from obs_bridges.simulator.common import start_ticker
from obs_bridges.simulator.github import job_json, run_json
from obs_bridges.simulator.world import World

LOG = log.get("obs_bridges.simulator.webhooks")
HOOK_ID = 424242
POST_TIMEOUT = 10.0  # GitHub's own limit for an answer
TICK_SECONDS = 0.25
# Runs that finished this long ago are skipped and their sent keys forgotten (bounded memory and work).
FORGET_AFTER = 3600.0
RECENT = 500


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how the simulator delivers (args.py: --github-webhook-*)."""

    url: str
    secret_file: str
    redeliver_rate: float = 0.05
    reorder_rate: float = 0.1


@dataclass
class Delivery:
    id: str
    event: str
    action: str
    body: bytes
    repo: str
    run_id: int | None


def http_post(url: str, body: bytes, headers: dict) -> int:
    """POST; the receiver's status, or -1 when it could not be reached."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=POST_TIMEOUT) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except (OSError, ValueError):
        return -1


class WebhookSender:
    def __init__(self, world: World, target: WebhookTarget, *, secret: bytes | None = None,
                 post: Callable[[str, bytes, dict], int] = http_post):
        self.world, self.target, self.post = world, target, post
        self.secret = secret if secret is not None else secrets.token_hex(32).encode()
        self.rng = random.Random(world.seed + 15)
        self.started = world.now()
        # Runs that existed when the hook was created are history: only their later transitions are delivered.
        # Every run after that (arrivals, injected ones dated in the recent past) is delivered whole.
        self.first_new_id = world.github._next_id + 1
        self.sent_keys: set[tuple] = set()  # (kind, run id, job id or 0, attempt, phase)
        self._bodies: OrderedDict[str, Delivery] = OrderedDict()  # recent deliveries, for redelivery
        self.held: dict[tuple[int, int], list[Delivery]] = {}  # in_progress held back until the run completes
        self.redeliveries: list[tuple[float, Delivery]] = []
        self.recent: deque = deque(maxlen=RECENT)
        self.counts = {"sent": 0, "failed": 0, "redelivered": 0, "reordered": 0}
        self.lock = threading.Lock()
        self._failing = False
        self.paused_until = 0.0  # wall clock: deliveries wait (GitHub's delivery delays) until then

    def write_secret(self) -> None:
        write_atomic(self.target.secret_file, self.secret.decode(), mode=0o600)
        log.register_secret(self.secret.decode())

    # -- what is due
    def due(self, now: float) -> list[tuple[float, str, str, object, object, tuple]]:
        """(time, event, action, run, job, key) for every transition up to now not yet sent, oldest first."""
        gh = self.world.github
        out, done = [], set()
        with self.world.lock:
            runs = [r for rs in gh.runs.values() for r in rs] + list(gh.past_attempts.values())
            for r in runs:
                if r.finished < now - FORGET_AFTER:
                    done.add(r.id)  # nothing can happen to it any more (a re-run moves `finished` ahead)
                    continue
                if r.created > now:
                    continue
                new = r.id >= self.first_new_id
                for t, action in ((r.created, "requested"), (r.started, "in_progress"), (r.finished, "completed")):
                    key = ("run", r.id, 0, r.attempt, action)
                    if t <= now and (new or t > self.started) and key not in self.sent_keys:
                        out.append((t, "workflow_run", action, r, None, key))
                for j in r.jobs:
                    for t, action in ((j.created, "queued"), (j.started, "in_progress"), (j.completed, "completed")):
                        key = ("job", r.id, j.id, r.attempt, action)
                        if t <= now and (new or t > self.started) and key not in self.sent_keys:
                            out.append((t, "workflow_job", action, r, j, key))
            if done:  # bounded memory: forget what was sent for runs long finished
                self.sent_keys = {k for k in self.sent_keys if k[1] not in done}
        out.sort(key=lambda x: (x[0], x[5][0] == "run", x[5]))
        return out

    def payload(self, event: str, action: str, run, job, at: float) -> dict:
        repo = run.repo
        base = {"action": action, "repository": {"id": 7000 + self.world.github.repos.index(repo)
                                                  if repo in self.world.github.repos else 0,
                                                  "name": repo.split("/", 1)[1], "full_name": repo,
                                                  "private": False, "owner": {"login": repo.split("/", 1)[0]}},
                "organization": {"login": repo.split("/", 1)[0]}, "sender": {"login": "octo-dev", "id": 1}}
        if event == "workflow_run":
            base["workflow_run"] = run_json(run, at, "https://api.github.com", repo)
            base["workflow"] = {"id": run.workflow_id, "name": run.workflow_name, "path": run.path, "state": "active"}
        else:
            base["workflow_job"] = job_json(job, run, at)
        return base

    def delivery(self, event: str, payload: dict, run=None) -> Delivery:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return Delivery(str(uuid.UUID(int=self.rng.getrandbits(128))), event, payload.get("action", ""), body,
                        run.repo if run else "", run.id if run else None)

    def headers(self, d: Delivery, signature: str | None) -> dict:
        h = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/obs-sim", "X-GitHub-Event": d.event,
             "X-GitHub-Delivery": d.id, "X-GitHub-Hook-ID": str(HOOK_ID),
             "X-GitHub-Hook-Installation-Target-Type": "organization",
             "X-GitHub-Hook-Installation-Target-ID": "1"}
        if signature is not None:
            h["X-Hub-Signature-256"] = signature
        return h

    # -- sending
    def send(self, d: Delivery, *, signature: str | None = "valid", redelivery: bool = False) -> int:
        sig = github_webhooks.signature(self.secret, d.body) if signature == "valid" else signature
        status = self.post(self.target.url, d.body, self.headers(d, sig))
        with self.lock:
            if signature == "valid" and d.event != "ping":
                self._bodies[d.id] = d
                while len(self._bodies) > RECENT:
                    self._bodies.popitem(last=False)
            self.counts["sent" if status >= 0 else "failed"] += 1
            if redelivery:
                self.counts["redelivered"] += 1
            self.recent.append({"id": d.id, "event": d.event, "action": d.action, "repo": d.repo, "run_id": d.run_id,
                                "status": status, "redelivery": redelivery, "signed": signature == "valid",
                                "t": self.world.clock()})
        if status < 0 and not self._failing:
            LOG.warning("webhook delivery failed: the receiver cannot be reached (not retried, as GitHub does)",
                        extra=log.kv(url=self.target.url))
        elif status >= 0 and self._failing:
            LOG.info("webhook deliveries reach the receiver again", extra=log.kv(url=self.target.url))
        self._failing = status < 0
        return status

    def tick(self) -> int:
        """Send what is due; returns how many deliveries were made."""
        if self.world.clock() < self.paused_until:
            return 0
        now = self.world.now()
        n = 0
        for t, event, action, run, job, key in self.due(now):
            self.sent_keys.add(key)
            d = self.delivery(event, self.payload(event, action, run, job, t), run)
            rk = (run.id, run.attempt)
            if event == "workflow_run" and action == "in_progress" and run.finished > now \
                    and self.rng.random() < self.target.reorder_rate:
                self.held.setdefault(rk, []).append(d)  # sent after its run's `completed`
                continue
            self.send(d)
            n += 1
            if event == "workflow_run" and action == "completed":
                for h in self.held.pop(rk, []):
                    with self.lock:
                        self.counts["reordered"] += 1
                    self.send(h)
                    n += 1
            if self.rng.random() < self.target.redeliver_rate:
                self.redeliveries.append((now + self.rng.uniform(0.5, 3.0), d))
        wall_due = [x for x in self.redeliveries if x[0] <= now]
        self.redeliveries = [x for x in self.redeliveries if x[0] > now]
        for _, d in wall_due:
            self.send(d, redelivery=True)
            n += 1
        return n

    # -- the control API
    def view(self) -> dict:
        with self.lock:
            return {"url": self.target.url, **self.counts, "recent": list(self.recent)}

    def special(self, kind: str, delivery_id: str | None = None, seconds: float = 0.0) -> dict:
        """forged (signed with another secret), unsigned, ping, redeliver (the given id, else the latest), or
        pause (deliveries wait `seconds`, then go out late, in order)."""
        if kind == "pause":
            self.paused_until = self.world.clock() + float(seconds)
            return {"paused_until": self.paused_until}
        if kind == "redeliver":
            d = self._find(delivery_id)
            return {"id": d.id, "status": self.send(d, redelivery=True)}
        if kind == "ping":
            d = self.delivery("ping", {"zen": "Keep it logically awesome.", "hook_id": HOOK_ID,
                                       "hook": {"type": "Organization", "id": HOOK_ID, "active": True,
                                                "events": ["workflow_job", "workflow_run"]}})
            return {"id": d.id, "status": self.send(d)}
        if kind not in ("forged", "unsigned"):
            raise ValueError("kind must be forged, unsigned, ping, redeliver or pause")
        gh, now = self.world.github, self.world.now()
        with self.world.lock:
            run = next((r for rs in gh.runs.values() for r in reversed(rs) if r.finished <= now), None)
        if run is None:
            raise ValueError("no completed run to forge a delivery of")
        d = self.delivery("workflow_run", self.payload("workflow_run", "completed", run, None, now), run)
        sig = github_webhooks.signature(b"not-the-secret", d.body) if kind == "forged" else None
        return {"id": d.id, "status": self.send(d, signature=sig), "run_id": run.id}

    def _find(self, delivery_id: str | None) -> Delivery:
        # Re-create the delivery from the log: GitHub redelivers the same body under the same id.
        with self.lock:
            rec = next((r for r in reversed(self.recent) if r["signed"] and r["event"] != "ping"
                        and (delivery_id is None or r["id"] == delivery_id)), None)
        if rec is None:
            raise ValueError("no such delivery in the recent log")
        return self._bodies[rec["id"]]

    def start(self) -> None:
        start_ticker("github-webhooks", self.tick, TICK_SECONDS)
