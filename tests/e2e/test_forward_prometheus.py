"""Metrics forwarding (docs/forwarding.md) on loopback with real Prometheus v3.16.0 binaries (issue 17 part 2).

- sender: the compose command of `prometheus` as docker-compose.forward.yml merges it (entrypoint
  obs-start under the image's busybox sh, OBS_REMOTE_WRITE=on), run on the shipped prometheus.yml, rendered
  by scripts/railway/obs-start with prometheus/forward/remote-write.yml; only the container paths become
  host paths (its mounts) and the listen address a free loopback port;
- receiver: a second Prometheus with --web.enable-remote-write-receiver behind basic auth (bcrypt web config);
- monitor: a third Prometheus that scrapes the sender's /metrics and evaluates the shipped
  prometheus/rules/alerts-forwarding.yml, where the alerts would be evaluated in the stack.

One test, in phases (about 3 minutes; the outage is 120 s by design): samples arrive with the stack's labels
and without the demo series or the `notifications` label; a 2-minute receiver outage loses no sample (every
sample the sender scraped in the window is in the receiver after it restarts on the same port and data
directory); wrong credentials count as failed samples, log a non-recoverable 401, put
PrometheusRemoteWriteFailing in pending, and the sender keeps running. Prints the measured catch-up time."""
from __future__ import annotations

import base64
import importlib
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import pytest
import yaml

from tests.alerting.runbookqueries import queries
from tests.conftest import ROOT, require_tool
from tests.e2e import otlp
from tests.harness import compose
from tests.support.procs import Proc
from tests.support.promtext import metric_sum
from tests.support.ports import free_port
from tests.support.wait import StopWaiting, wait_for

OUTAGE_S = 120
OVERLAY = ROOT / "docker-compose.forward.yml"
RULES = ROOT / "prometheus" / "rules" / "alerts-forwarding.yml"
USER, PASSWORD, WRONG = "obs-forward", "correct-horse-forward-7", "wrong-password-forward-9"
# A series the sender scrapes every 15 s whatever the host runs: the compose name does not resolve here, so
# each scrape writes up=0 (the scrape still happens, on its own schedule).
OUTAGE_SERIES = 'up{job="alertmanager"}'


def bcrypt_hash(password: str) -> str:
    """bcrypt ($2b$) for the receiver's web config, from the standard library's crypt (libxcrypt): the bcrypt
    package is not a dependency. crypt is deprecated (gone in Python 3.13; this venv is 3.11)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = importlib.import_module("crypt")
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))


def get(url: str, auth: tuple[str, str] | None = None, timeout: float = 5) -> bytes:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def query(base: str, expr: str, at: float | None = None, auth=None) -> list[dict]:
    params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
    doc = json.loads(get(f"{base}/api/v1/query?" + urllib.parse.urlencode(params), auth))
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def ready(p: Proc, base: str, auth=None):
    def check() -> bool:
        if not p.alive():
            raise StopWaiting(f"{p.name} exited: {p.text()[-2000:]}")
        get(f"{base}/-/ready", auth)  # raises until it answers 200
        return True
    wait_for(check, 60, 0.25, f"{p.name} ready")


def overlay_prometheus() -> dict:
    """The overlay's prometheus block, interpolated like compose does (with .env and no other variables)."""
    doc = compose.interpolate(yaml.safe_load(OVERLAY.read_text()), compose.read_env())
    return doc["services"]["prometheus"]


def host_path(container_path: str, binds: dict[str, str]) -> str:
    for target, source in sorted(binds.items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target + "/"):
            return source + container_path[len(target):]
    raise AssertionError(f"{container_path} is not in a bind mount of the merged service")


def sender_argv(prom: Path, sh: list[str], port: int, data: Path) -> tuple[list[str], dict[str, str]]:
    """docker-compose.yml + docker-compose.forward.yml for `prometheus`: the overlay's entrypoint followed by
    the base command, each container path replaced by the file compose mounts there."""
    base = compose.services()["prometheus"]
    over = overlay_prometheus()
    binds = {m.target: m.source for m in base.mounts if m.kind == "bind"}
    for v in over["volumes"]:
        src, tgt = v.split(":")[:2]
        binds[tgt] = str((ROOT / src).resolve())
    entry = over["entrypoint"]
    assert entry[:2] == ["/bin/sh", "/usr/local/bin/obs-start"] and entry[-1] == "/bin/prometheus", entry
    argv = [*sh, host_path(entry[1], binds), *entry[2:-1], str(prom)]
    for a in base.command:
        flag, eq, val = a.partition("=")
        if flag == "--storage.tsdb.path":
            a = f"{flag}={data}"
        elif flag == "--web.listen-address":
            a = f"{flag}=127.0.0.1:{port}"
        elif eq and val.startswith("/"):
            a = f"{flag}={host_path(val, binds)}"
        argv.append(a)
    env = {**base.environment, **{k: str(v) for k, v in over["environment"].items()}}
    return argv, env


def samples(base: str, expr: str, start: float, end: float, auth=None) -> list[float]:
    """Timestamps of the raw samples of `expr` (one series) in (start, end]."""
    res = query(base, f"{expr}[{int(end - start)}s]", at=end, auth=auth)
    assert len(res) <= 1, res
    return [float(t) for t, _ in res[0]["values"]] if res else []


@pytest.fixture
def setup(tmp_path):
    prom = require_tool("prometheus", "prometheus")
    busybox = shutil.which("busybox")
    sh = [busybox, "sh"] if busybox else ["/bin/sh"]  # the image's shell is busybox ash
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    rport, sport, mport = free_port(), free_port(), free_port()
    receiver_url = f"http://127.0.0.1:{rport}/api/v1/write"
    for name, value in (("url", receiver_url + "\n"), ("username", USER), ("password", PASSWORD)):
        (secrets / f"prometheus_remote_write_{name}").write_text(value)

    (tmp_path / "receiver-web.yml").write_text(yaml.safe_dump({"basic_auth_users": {USER: bcrypt_hash(PASSWORD)}}))
    (tmp_path / "receiver.yml").write_text("global: {scrape_interval: 1h}\n")
    receiver = Proc("receiver", [str(prom), f"--config.file={tmp_path / 'receiver.yml'}",
                                 f"--web.config.file={tmp_path / 'receiver-web.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'receiver-data'}",
                                 f"--web.listen-address=127.0.0.1:{rport}", "--web.enable-remote-write-receiver",
                                 "--enable-feature=exemplar-storage", "--log.format=json"],
                    tmp_path / "receiver.log", {"PATH": os.environ["PATH"]})

    (tmp_path / "monitor.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{sport}"]}]}]}))
    monitor = Proc("monitor", [str(prom), f"--config.file={tmp_path / 'monitor.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'monitor-data'}",
                               f"--web.listen-address=127.0.0.1:{mport}", "--log.format=json"],
                   tmp_path / "monitor.log", {"PATH": os.environ["PATH"]})

    argv, env = sender_argv(prom, sh, sport, tmp_path / "sender-data")
    env.update({"PATH": os.environ["PATH"], "OBS_REMOTE_WRITE_SECRETS_DIR": str(secrets),
                "OBS_RENDER_DIR": str(tmp_path / "rendered"), "OBS_NOTIFICATIONS": "on"})
    sender = Proc("sender", argv, tmp_path / "sender.log", env)
    procs = [receiver, sender, monitor]
    try:
        for p in procs:
            p.start()
        urls = {"receiver": f"http://127.0.0.1:{rport}", "sender": f"http://127.0.0.1:{sport}",
                "monitor": f"http://127.0.0.1:{mport}"}
        ready(receiver, urls["receiver"], (USER, PASSWORD))
        ready(sender, urls["sender"])
        ready(monitor, urls["monitor"])
        yield {**urls, "procs": dict(zip(("receiver", "sender", "monitor"), procs, strict=True)),
               "secrets": secrets, "tmp": tmp_path}
    finally:
        for p in reversed(procs):
            p.stop()


def test_forwarding_labels_outage_and_wrong_credentials(setup):
    s = setup
    rcv, snd, mon = s["receiver"], s["sender"], s["monitor"]
    auth = (USER, PASSWORD)
    receiver, sender = s["procs"]["receiver"], s["procs"]["sender"]
    with pytest.raises(urllib.error.HTTPError) as refused:  # the receiver really wants the credentials
        get(f"{rcv}/api/v1/query?query=up")
    assert refused.value.code == 401
    rendered = next((s["tmp"] / "rendered").rglob("prometheus.yml"))
    assert "remote_write:" in rendered.read_text() and PASSWORD not in rendered.read_text()

    # --- 1. labels, and the demo series stay home --------------------------------------------------
    otlp_base = f"{snd}/api/v1/otlp"
    # demo data as it arrives in the stack: a bridge's series labelled demo="true", the demo app's OTLP metrics
    # (job = its service.name, obs-demo); then a real app's series, pushed last
    assert otlp.post(otlp_base, "metrics", otlp.counter_payload("fwd-bridge", "fwd_probe", 1, {"demo": "true"})) == 200
    assert otlp.post(otlp_base, "metrics", otlp.counter_payload("obs-demo", "fwd_probe", 1, {"kind": "demo"})) == 200
    assert otlp.post(otlp_base, "metrics", otlp.counter_payload("fwd-probe", "fwd_probe", 1, {"kind": "real"})) == 200
    real = '{job="fwd-probe", kind="real"}'

    def arrived():
        return query(rcv, OUTAGE_SERIES, auth=auth) and query(rcv, real, auth=auth)
    wait_for(arrived, 60, 1, "the sender's samples at the receiver")
    up = query(rcv, OUTAGE_SERIES, auth=auth)[0]["metric"]
    assert up == {"__name__": "up", "job": "alertmanager", "instance": "alertmanager:9093", "stack": "obs-stack"}, up
    probe = query(rcv, real, auth=auth)[0]["metric"]
    assert probe["stack"] == "obs-stack" and probe["kind"] == "real" and "notifications" not in probe, probe
    # the sender has the demo series (and labels everything notifications="on" on the way out) ...
    # (each demo target is scraped on its own schedule: wait until all three have been, not just the first)
    wait_for(lambda: query(snd, '{job="demo-app"}') and query(snd, '{demo="true"}') and query(snd, '{job="obs-demo"}'),
             60, 1, "the demo series at the sender")
    assert 'notifications: "on"' in json.loads(get(f"{snd}/api/v1/status/config"))["data"]["yaml"]
    # ... the receiver none, once a later batch has certainly gone (the control probe was pushed after it)
    wait_for(lambda: metric_sum(get(f"{snd}/metrics").decode(), "prometheus_remote_storage_samples_dropped_total") > 0,
             30, 1, "samples dropped by write_relabel_configs")
    for sel in ('{job="demo-app"}', '{demo="true"}', '{job="obs-demo"}', '{notifications!=""}'):
        assert not query(rcv, sel, auth=auth), f"{sel} was forwarded"

    # --- 2. a 2-minute receiver outage loses nothing -----------------------------------------------
    receiver.stop()
    t0 = time.time()
    retried = 0.0
    while time.time() - t0 < OUTAGE_S:  # the outage itself: its length is the point, not a wait for something
        assert sender.alive(), sender.text()[-3000:]
        retried = metric_sum(get(f"{snd}/metrics").decode(), "prometheus_remote_storage_samples_retried_total")
        time.sleep(2)
    # The Behind rule's own expression, its 120 s threshold lowered to 60 s: the outage is only 120 s long.
    behind = next(r["expr"] for r in _rules() if r["alert"] == "PrometheusRemoteWriteBehind")
    assert ") > 120" in behind
    lag = query(mon, behind.replace(") > 120", ") > 60"))
    receiver.start()
    t1 = time.time()
    ready(receiver, rcv, auth)
    want = samples(snd, OUTAGE_SERIES, t0 - 30, t1)
    assert len([t for t in want if t0 <= t <= t1]) >= OUTAGE_S // 15 - 1, want

    def caught_up():
        got = samples(rcv, '{__name__="up", job="alertmanager", stack="obs-stack"}', t0 - 30, t1, auth)
        return got == want or None
    wait_for(caught_up, 90, 1, "every sample of the outage window at the receiver")
    catch_up = time.time() - t1
    print(f"\nforwarding: {len(want)} samples of {OUTAGE_SERIES} in the window, all delivered "
          f"{catch_up:.1f} s after the receiver came back; {retried:.0f} samples retried during the outage")
    assert retried > 0, "the outage produced no retries: was the receiver really down?"
    assert lag and lag[0]["metric"].get("remote_name") == "forward", f"the Behind expression (> 60 s) saw no lag: {lag}"

    # --- 3. wrong credentials: counted, logged, alerting, never a crash --------------------------
    failed0 = metric_sum(get(f"{snd}/metrics").decode(), "prometheus_remote_storage_samples_failed_total")
    pw = s["secrets"] / "prometheus_remote_write_password"
    tmp = pw.with_suffix(".new")
    tmp.write_text(WRONG)
    tmp.rename(pw)  # re-read by Prometheus on every request: no restart
    wait_for(lambda: metric_sum(get(f"{snd}/metrics").decode(), "prometheus_remote_storage_samples_failed_total") > failed0,
             60, 1, "failed samples after the password changed")

    def pending():
        for g in json.loads(get(f"{mon}/api/v1/rules?type=alert"))["data"]["groups"]:
            for r in g["rules"]:
                if r["name"] == "PrometheusRemoteWriteFailing" and r["state"] in ("pending", "firing"):
                    return r
        return None
    rule = wait_for(pending, 60, 1, "PrometheusRemoteWriteFailing pending on the monitor")
    assert rule["alerts"][0]["labels"]["remote_name"] == "forward", rule
    log = sender.text()
    assert re.search(r"non-recoverable error.*401", log), log[-3000:]
    assert PASSWORD not in log and WRONG not in log, "a credential reached the sender's log"
    assert sender.alive() and get(f"{snd}/-/ready")

    # --- 4. the runbooks' queries run over a forwarding Prometheus's own metrics -------------------
    problems = []
    for q in queries():
        if q.lang == "promql" and q.runbook.startswith("prometheus-remote-write-"):
            if not query(mon, q.text):
                problems.append(f"{q.runbook}: {q.text}: no result")
    assert not problems, "\n".join(problems)


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]

