"""Metrics forwarding, statically (docs/forwarding.md): the overlay's prometheus block, and what
scripts/railway/obs-start renders from prometheus/forward/remote-write.yml under dash and busybox ash, for each
auth mode, under compose and on Railway, checked by the real promtool (strict: an unknown field fails); the refusals (missing, empty or
unreadable secret files, URLs with credentials or a query string). tests/e2e/test_forward_prometheus.py runs
the rendered config against a real receiver."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, require_tool
from tests.harness import compose
from tests.static.test_compose_cli import compose_config

OBS_START = ROOT / "scripts" / "railway" / "obs-start"
CONFIG = ROOT / "prometheus" / "prometheus.yml"
FRAGMENT = ROOT / "prometheus" / "forward" / "remote-write.yml"
OVERLAY = ROOT / "docker-compose.forward.yml"
SHELLS = [pytest.param(["dash"], id="dash"),
          pytest.param(["busybox", "sh"], id="busybox-ash",
                       marks=pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"))]
ARGV_PRINTER = [sys.executable, "-c", "import json,os,sys; print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}))"]
URL = "https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push"
SECRET = "glc_not-a-real-token-0123456789"
AUTH_FILES = {"basic": ["url", "username", "password"], "bearer": ["url", "bearer_token"], "none": ["url"]}


def overlay_prometheus() -> dict:
    return yaml.safe_load(OVERLAY.read_text())["services"]["prometheus"]


def secrets(tmp_path: Path, auth: str, **override: str) -> Path:
    d = tmp_path / "secrets"
    d.mkdir(exist_ok=True)
    values = {"url": URL + "\n", "username": "123456", "password": SECRET, "bearer_token": SECRET}
    for name in AUTH_FILES[auth]:
        (d / f"prometheus_remote_write_{name}").write_text(override.get(name, values[name]))
    return d


def run(shell, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OBS_RENDER_DIR": str(tmp_path / "r"), **env}
    return subprocess.run([*shell, str(OBS_START), "prometheus", *ARGV_PRINTER, f"--config.file={CONFIG}",
                           "--web.listen-address=0.0.0.0:9090"], env=full, capture_output=True, text=True, timeout=30)


def rendered(tmp_path: Path) -> Path:
    return Path(str(tmp_path / "r") + str(CONFIG))


# ------------------------------------------------------------------------------------------ overlay
def test_overlay_runs_obs_start_on_the_base_command():
    """Only the entrypoint changes (a program the image has: /bin/sh, docs/image-facts.yml); the flags stay
    docker-compose.yml's. obs-start finds remote-write.yml in forward/ next to --config.file, which is where
    docker-compose.yml mounts it."""
    p = overlay_prometheus()
    assert "command" not in p, "the overlay must keep the base command (the flags)"
    assert p["entrypoint"] == ["/bin/sh", "/usr/local/bin/obs-start", "prometheus", "/bin/prometheus"]
    facts = yaml.safe_load((ROOT / "docs" / "image-facts.yml").read_text())["images"]["prom/prometheus"]
    assert "/bin/sh" in facts["programs"] and "/bin/prometheus" in facts["programs"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in p["volumes"]}
    assert mounts["/usr/local/bin/obs-start"] == "./scripts/railway/obs-start"
    base = compose.services()["prometheus"]
    cfg = next(a.split("=", 1)[1] for a in base.command if a.startswith("--config.file="))
    # forward/ next to --config.file: mounted by docker-compose.yml itself (and baked for Railway).
    base_mounts = {m.target: m.source for m in base.mounts}
    assert base_mounts[cfg.rsplit("/", 1)[0] + "/forward"].endswith("prometheus/forward")
    assert mounts["/run/obs-secrets"] == "./secrets"
    assert all(v.endswith(":ro,z") for v in p["volumes"])
    assert p["environment"]["OBS_REMOTE_WRITE"] == "on"
    assert p["environment"]["PROMETHEUS_REMOTE_WRITE_AUTH"] == "${PROMETHEUS_REMOTE_WRITE_AUTH:-basic}"


def test_compose_merges_the_overlay():
    """The real Compose CLI: entrypoint from the overlay, command from docker-compose.yml."""
    p = compose_config("docker-compose.yml", OVERLAY)
    assert p.returncode == 0, p.stderr
    svc = json.loads(p.stdout)["services"]["prometheus"]
    assert svc["entrypoint"] == overlay_prometheus()["entrypoint"]
    assert svc["command"] == compose.services()["prometheus"].command
    assert svc["environment"]["OBS_REMOTE_WRITE"] == "on"
    targets = {v["target"] for v in svc["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/forward", "/run/obs-secrets", "/prometheus"} <= targets


def test_base_config_has_no_remote_write_and_the_demo_jobs_exist():
    """obs-start appends a top-level remote_write; the jobs the relabelling drops are the shipped demo jobs."""
    base = yaml.safe_load(CONFIG.read_text())
    assert "remote_write" not in base
    jobs = {j["job_name"] for j in base["scrape_configs"]}
    rw = yaml.safe_load(FRAGMENT.read_text())["remote_write"][0]
    dropped_jobs = next(r["regex"] for r in rw["write_relabel_configs"] if r.get("source_labels") == ["job"])
    assert {"supabase-metrics-demo", "demo-app"} <= set(dropped_jobs.split("|")) and {"supabase-metrics-demo", "demo-app"} <= jobs
    assert "notifications" in base["global"]["external_labels"]


# ------------------------------------------------------------------------------------------ rendering
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("auth", ["basic", "bearer", "none"])
def test_compose_render_is_the_base_config_plus_remote_write(shell, auth, tmp_path):
    d = secrets(tmp_path, auth)
    p = run(shell, {"OBS_REMOTE_WRITE": "on", "PROMETHEUS_REMOTE_WRITE_AUTH": auth,
                    "OBS_REMOTE_WRITE_SECRETS_DIR": str(d)}, tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # only --config.file changes under compose; the listen address stays as compose gives it
    assert out["argv"] == [f"--config.file={rendered(tmp_path)}", "--web.listen-address=0.0.0.0:9090"]
    text = rendered(tmp_path).read_text()
    cfg = yaml.safe_load(text)
    base = yaml.safe_load(CONFIG.read_text())
    assert {k: v for k, v in cfg.items() if k != "remote_write"} == base
    [rw] = cfg["remote_write"]
    assert rw["url"] == URL and rw["name"] == "forward"
    if auth == "basic":
        assert rw["basic_auth"] == {"username_file": f"{d}/prometheus_remote_write_username",
                                    "password_file": f"{d}/prometheus_remote_write_password"}
        assert "authorization" not in rw
    elif auth == "bearer":
        assert rw["authorization"] == {"type": "Bearer", "credentials_file": f"{d}/prometheus_remote_write_bearer_token"}
        assert "basic_auth" not in rw
    else:
        assert "basic_auth" not in rw and "authorization" not in rw
    assert rw["queue_config"]["retry_on_http_429"] is True
    assert SECRET not in text + p.stderr + p.stdout
    assert "obs-forward-auth" not in text.replace(f"obs-forward-auth:{auth}:", "")
    promtool = require_tool("prometheus", "promtool")
    chk = subprocess.run([str(promtool), "check", "config", "--syntax-only", str(rendered(tmp_path))],
                         capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    line = json.loads(p.stderr.strip().splitlines()[-1])
    assert line["level"] == "info" and "https://prometheus-prod-01-eu-west-0.grafana.net" in line["msg"]


@pytest.mark.parametrize("shell", SHELLS)
def test_off_is_a_noop(shell, tmp_path):
    for env in ({}, {"OBS_REMOTE_WRITE": "off"}, {"OBS_REMOTE_WRITE": "", "PROMETHEUS_REMOTE_WRITE_URL": URL}):
        p = run(shell, env, tmp_path)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["argv"][0] == f"--config.file={CONFIG}"
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_railway_variables_become_files(shell, tmp_path):
    env = {"RAILWAY_PRIVATE_DOMAIN": "prometheus.railway.internal", "PROMETHEUS_REMOTE_WRITE_URL": URL,
           "PROMETHEUS_REMOTE_WRITE_USERNAME": "123456", "PROMETHEUS_REMOTE_WRITE_PASSWORD": SECRET}
    p = run(shell, env, tmp_path)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert not [k for k in out["env"] if k.startswith("PROMETHEUS_REMOTE_WRITE_")]
    rw = yaml.safe_load(rendered(tmp_path).read_text())["remote_write"][0]
    pw = Path(rw["basic_auth"]["password_file"])
    assert pw.parent == tmp_path / "r" / "secrets" and pw.read_text() == SECRET
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert rw["url"] == URL and SECRET not in p.stderr
    # the rest is the Railway render as before (hosts rewritten): a scrape target points at the private network
    assert "alertmanager.railway.internal:9093" in rendered(tmp_path).read_text()
    off = run(shell, {**env, "OBS_REMOTE_WRITE": "off"}, tmp_path)
    assert off.returncode == 0 and "remote_write" not in rendered(tmp_path).read_text()
    assert not [k for k in json.loads(off.stdout.strip().splitlines()[-1])["env"] if k.startswith("PROMETHEUS_REMOTE_WRITE_")]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case,msg", [
    ({"PROMETHEUS_REMOTE_WRITE_PASSWORD": ""}, "PROMETHEUS_REMOTE_WRITE_PASSWORD is not set"),
    ({"PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN": "t"}, "does not use it"),
    ({"PROMETHEUS_REMOTE_WRITE_AUTH": "digest"}, "must be basic, bearer or none"),
])
def test_railway_refusals(shell, case, msg, tmp_path):
    env = {"RAILWAY_PRIVATE_DOMAIN": "prometheus.railway.internal", "PROMETHEUS_REMOTE_WRITE_URL": URL,
           "PROMETHEUS_REMOTE_WRITE_USERNAME": "123456", "PROMETHEUS_REMOTE_WRITE_PASSWORD": SECRET, **case}
    p = run(shell, env, tmp_path)
    assert p.returncode == 1 and msg in p.stderr and p.stdout == "", p.stderr
    assert SECRET not in p.stderr


def _missing(d: Path) -> None:
    (d / "prometheus_remote_write_password").unlink()


def _empty(d: Path) -> None:
    (d / "prometheus_remote_write_password").write_text("")


def _directory(d: Path) -> None:
    (d / "prometheus_remote_write_password").unlink()
    (d / "prometheus_remote_write_password").mkdir()


def _dangling(d: Path) -> None:
    (d / "prometheus_remote_write_password").unlink()
    (d / "prometheus_remote_write_password").symlink_to(d / "nowhere")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("breaks,msg", [(_missing, "cannot read the secret file"), (_empty, "is empty"),
                                        (_directory, "cannot read the secret file"),
                                        (_dangling, "cannot read the secret file")],
                         ids=["missing", "empty", "directory", "dangling-link"])
def test_an_unusable_secret_file_stops_the_start(shell, breaks, msg, tmp_path):
    """Never a fallback to sending without credentials: the start fails, naming the file, not its content."""
    d = secrets(tmp_path, "basic")
    breaks(d)
    p = run(shell, {"OBS_REMOTE_WRITE": "on", "OBS_REMOTE_WRITE_SECRETS_DIR": str(d)}, tmp_path)
    assert p.returncode == 1 and p.stdout == "", p.stderr
    line = json.loads(p.stderr.strip().splitlines()[-1])
    assert line["level"] == "error" and msg in line["msg"] and "prometheus_remote_write_password" in line["msg"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("url,msg", [
    ("prometheus.example/api/v1/push", "must start with http"),
    ("https://user:pw@prometheus.example/api/v1/push", "must not contain credentials"),
    ("https://prometheus.example/api/v1/push?token=abc", "no query string"),
    ("https://prometheus.example/api/v1/push#x", "no query string"),
    ('https://prometheus.example/a"b', "path may contain only"),
    ("https://prometheus.example/a b", "path may contain only"),
    ("https://prometheus.example/a\nremote_timeout: 1s", "path may contain only"),
    ("https://prom|etheus.example/", "invalid host"),
])
def test_bad_urls_are_refused(shell, url, msg, tmp_path):
    d = secrets(tmp_path, "none", url=url)
    p = run(shell, {"OBS_REMOTE_WRITE": "on", "PROMETHEUS_REMOTE_WRITE_AUTH": "none",
                    "OBS_REMOTE_WRITE_SECRETS_DIR": str(d)}, tmp_path)
    assert p.returncode == 1 and msg in p.stderr, p.stderr
    assert "abc" not in p.stderr and "pw@" not in p.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_bad_switch_value(shell, tmp_path):
    p = run(shell, {"OBS_REMOTE_WRITE": "yes"}, tmp_path)
    assert p.returncode == 1 and "OBS_REMOTE_WRITE must be on or off" in p.stderr

