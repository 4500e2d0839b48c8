"""scripts/railway/obs-start under dash and busybox ash: a no-op under compose; on Railway it renders
the baked configs (host names, listen addresses, secrets), refuses Grafana without a password and
builds the API scrape job from variables."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.railway.railwaylib import OBS_START, ROOT

SHELLS = [pytest.param(["dash"], id="dash"),
          pytest.param(["busybox", "sh"], id="busybox-ash",
                       marks=pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"))]
NAMES = ["prometheus", "alertmanager", "grafana", "loki", "tempo", "otelcol", "blackbox-exporter", "webhook-sink",
         "simulator", "railway-exporter", "vercel-exporter", "supabase-exporter", "github-exporter", "demo-app"]
# A compose name in host:port form that a Railway deployment would fail to resolve.
COMPOSE_HOSTPORT = re.compile(r"(?<![\w.-])(%s):\d" % "|".join(map(re.escape, NAMES)))
ARGV_PRINTER = [sys.executable, "-c", "import json,os,sys; print(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}))"]


# Demo-only lines in the shipped configs; obs-start drops them on Railway unless OBS_DEMO=true.
DEMO_BLOCK = re.compile(r"^[ \t]*# obs-demo:begin.*?^[ \t]*# obs-demo:end[^\n]*\n", re.M | re.S)


def run(shell, args, env, check=True):
    p = subprocess.run([*shell, str(OBS_START), *args], env=env, capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def printed(p) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


def base_env(tmp_path, **kw):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **kw}
    return env


def railway(tmp_path, **kw):
    return base_env(tmp_path, RAILWAY_PRIVATE_DOMAIN="x.railway.internal", OBS_RENDER_DIR=str(tmp_path / "r"), **kw)


@pytest.mark.parametrize("shell", SHELLS)
def test_compose_is_a_noop(shell, tmp_path):
    """Without Railway's variables the command runs exactly as compose gives it; nothing is written."""
    args = ["--config.file=" + str(ROOT / "prometheus/prometheus.yml"), "--web.listen-address=0.0.0.0:9090",
            "--cluster.listen-address=", "with space"]
    env = base_env(tmp_path, OBS_RENDER_DIR=str(tmp_path / "r"), GF_SECURITY_ADMIN_PASSWORD="")
    out = printed(run(shell, ["prometheus", *ARGV_PRINTER, *args], env))
    assert out["argv"] == args
    assert not (tmp_path / "r").exists()
    # grafana under compose: no password demanded (grafana/entrypoint.sh handles it)
    out = printed(run(shell, ["grafana", *ARGV_PRINTER], env))
    assert "OBS_SECRETS_DIR" not in out["env"]


def _expected(value: str, suffix: str = ".railway.internal") -> str:
    value = COMPOSE_HOSTPORT.sub(lambda m: m.group(1) + suffix + m.group(0)[len(m.group(1)):], value)
    return value


def _walk(a, b, path="$"):
    """Rendered YAML b has a's structure; every string changed only by the documented rewrites."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys differ"
        for k in a:
            _walk(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: list differs"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{path}[{i}]")
    elif isinstance(a, str):
        want = _expected(a)
        want = re.sub(r"^0\.0\.0\.0:(\d+)$", r"[::]:\1", want)
        want = want.replace("/run/obs-secrets/", "/RENDER/secrets/")
        if path.endswith(".host") and want == "0.0.0.0":
            want = "::"
        assert b == want, f"{path}: {a!r} rendered as {b!r}, expected {want!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("config", ["prometheus/prometheus.yml", "alertmanager/alertmanager.yml", "loki/loki.yml",
                                    "tempo/tempo.yml", "otelcol/config.yaml", "blackbox/blackbox.yml"])
def test_render_rewrites_only_hosts_listeners_and_secrets(shell, config, tmp_path):
    src = ROOT / config
    p = run(shell, ["svc", *ARGV_PRINTER, f"--config.file={src}", "--web.listen-address=0.0.0.0:9090"],
            railway(tmp_path))
    out = printed(p)
    rendered = Path(str(tmp_path / "r") + str(src))
    assert out["argv"] == [f"--config.file={rendered}", "--web.listen-address=[::]:9090"]
    text = rendered.read_text()
    assert not COMPOSE_HOSTPORT.search(text), COMPOSE_HOSTPORT.search(text)
    assert "0.0.0.0" not in text
    a = yaml.safe_load(DEMO_BLOCK.sub("", src.read_text()))
    b = yaml.safe_load(text.replace(str(tmp_path / "r"), "/RENDER"))
    _walk(a, b)
    # the original, and the rest of its folder, are untouched copies
    assert src.read_text() != text or not COMPOSE_HOSTPORT.search(src.read_text())


def _jobs(cfg: dict) -> dict:
    return {j["job_name"]: j for j in cfg["scrape_configs"]}


@pytest.mark.parametrize("shell", SHELLS)
def test_demo_jobs_only_with_obs_demo(shell, tmp_path):
    """A Railway stack without the demo services must not scrape or probe a demo app that does not exist
    (APIDown and SyntheticProbeFailed would page forever); OBS_DEMO=true keeps them."""
    src = ROOT / "prometheus/prometheus.yml"
    source = src.read_text()
    assert len(DEMO_BLOCK.findall(source)) >= 2, "the demo app's job and smoke probe are marked as demo-only"
    shipped = _jobs(yaml.safe_load(source))
    rendered = Path(str(tmp_path / "r") + str(src))

    run(shell, ["prometheus", *ARGV_PRINTER, f"--config.file={src}"], railway(tmp_path))
    dropped = _jobs(yaml.safe_load(rendered.read_text()))
    assert "demo-app" in shipped and "demo-app" not in dropped
    assert "demo-app" not in rendered.read_text(), "a demo-app target survived without OBS_DEMO"
    # the smoke job stays for the user's own URLs, without the demo target
    assert "blackbox-smoke" in dropped and not dropped["blackbox-smoke"].get("static_configs")
    assert set(shipped) - set(dropped) <= {"demo-app", "supabase-metrics-demo"}

    run(shell, ["prometheus", *ARGV_PRINTER, f"--config.file={src}"], railway(tmp_path, OBS_DEMO="true"))
    kept = _jobs(yaml.safe_load(rendered.read_text()))
    assert set(kept) == set(shipped)
    assert "demo-app.railway.internal:8000" in rendered.read_text()

    bad = run(shell, ["prometheus", *ARGV_PRINTER], railway(tmp_path, OBS_DEMO="yes"), check=False)
    assert bad.returncode == 1 and "OBS_DEMO must be true or false" in bad.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_host_overrides_and_suffix(shell, tmp_path):
    env = railway(tmp_path, OBS_HOST_SUFFIX=".internal.example", OBS_HOST_LOKI="logs.railway.internal")
    src = ROOT / "otelcol/config.yaml"
    run(shell, ["otelcol", *ARGV_PRINTER, f"--config={src}"], env)
    text = Path(str(tmp_path / "r") + str(src)).read_text()
    assert "http://logs.railway.internal:3100/otlp" in text
    assert "tempo.internal.example:4317" in text
    bad = run(shell, ["otelcol", *ARGV_PRINTER], {**env, "OBS_HOST_LOKI": "evil#host"}, check=False)
    assert bad.returncode == 1 and "invalid host name" in bad.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_grafana_refuses_without_password(shell, tmp_path):
    for pw, why in [(None, "is not set"), ("", "is not set"), ("short", "too weak")]:
        env = railway(tmp_path)
        if pw is not None:
            env["GF_SECURITY_ADMIN_PASSWORD"] = pw
        p = run(shell, ["grafana", *ARGV_PRINTER], env, check=False)
        assert p.returncode == 1 and p.stdout == ""
        line = json.loads(p.stderr.strip().splitlines()[-1])
        assert line["level"] == "error" and why in line["msg"] and "GF_SECURITY_ADMIN_PASSWORD" in line["msg"]


@pytest.mark.parametrize("shell", SHELLS)
def test_grafana_password_becomes_a_file_for_the_compose_entrypoint(shell, tmp_path):
    """The Railway variable reaches grafana/entrypoint.sh as a file; the variable itself never reaches
    Grafana; datasource URLs point at the private network."""
    pw = "correct-horse-battery-staple"
    prov = tmp_path / "prov"
    shutil.copytree(ROOT / "grafana/provisioning", prov)
    env = railway(tmp_path, GF_SECURITY_ADMIN_PASSWORD=pw, GF_PATHS_PROVISIONING=str(prov), GF_PATHS_DATA=str(tmp_path),
                  GRAFANA_RUN=ARGV_PRINTER[0])
    cmd = ["grafana", "/bin/sh", str(ROOT / "grafana/entrypoint.sh"), *ARGV_PRINTER[1:]]
    p = run(shell, cmd, env)
    out = printed(p)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in out["env"]
    f = Path(out["env"]["GF_SECURITY_ADMIN_PASSWORD__FILE"])
    assert f.read_text() == pw and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert pw not in p.stderr + p.stdout.replace(json.dumps(out), "")
    rendered = Path(out["env"]["GF_PATHS_PROVISIONING"]) / "datasources/datasources.yml"
    _walk(yaml.safe_load((prov / "datasources/datasources.yml").read_text()), yaml.safe_load(rendered.read_text()))
    urls = {d["uid"]: d["url"] for d in yaml.safe_load(rendered.read_text())["datasources"]}
    for uid, port in [("prometheus", 9090), ("loki", 3100), ("tempo", 3200), ("alertmanager", 9093)]:
        assert urls[uid] == f"http://{uid}.railway.internal:{port}"
    assert (prov / "datasources/datasources.yml").read_text() == (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_alertmanager_secret_files_from_variables(shell, tmp_path):
    src = ROOT / "alertmanager/alertmanager.yml"
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    env = railway(tmp_path, SLACK_OPS_WEBHOOK_URL=url)
    out = printed(run(shell, ["alertmanager", *ARGV_PRINTER, f"--config.file={src}"], env))
    secret = tmp_path / "r/secrets/slack_ops_webhook_url"
    assert secret.read_text() == url and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "SLACK_OPS_WEBHOOK_URL" not in out["env"]
    assert not (tmp_path / "r/secrets/slack_dev_webhook_url").exists()
    rendered = Path(str(tmp_path / "r") + str(src)).read_text()
    assert f"api_url_file: {tmp_path}/r/secrets/slack_ops_webhook_url" in rendered
    # relative template references keep working: the templates folder is rendered alongside
    assert list(Path(str(tmp_path / "r") + str(src.parent / "templates")).glob("*.tmpl"))


@pytest.mark.parametrize("shell", SHELLS)
def test_api_scrape_job_from_variables(shell, tmp_path):
    src = ROOT / "prometheus/prometheus.yml"
    env = railway(tmp_path, API_METRICS_URL="https://api-production.up.railway.app/internal/metrics",
                  API_METRICS_BASIC_AUTH_USER="prom", API_METRICS_BASIC_AUTH_PASSWORD="s3cret-pass",
                  API_SERVICE_NAME="checkout-api")
    out = printed(run(shell, ["prometheus", *ARGV_PRINTER, f"--config.file={src}"], env))
    assert "API_METRICS_BASIC_AUTH_PASSWORD" not in out["env"]
    main = yaml.safe_load(Path(str(tmp_path / "r") + str(src)).read_text())
    assert main["scrape_config_files"] == [f"{tmp_path}/r/scrape.d/*.yml"]
    job = yaml.safe_load((tmp_path / "r/scrape.d/api.yml").read_text())["scrape_configs"][0]
    assert job["scheme"] == "https" and job["metrics_path"] == "/internal/metrics"
    assert job["static_configs"] == [{"targets": ["api-production.up.railway.app"], "labels": {"service": "checkout-api"}}]
    assert job["basic_auth"]["username"] == "prom"
    assert Path(job["basic_auth"]["password_file"]).read_text() == "s3cret-pass"
    assert "s3cret-pass" not in (tmp_path / "r/scrape.d/api.yml").read_text()
    env = railway(tmp_path, API_METRICS_URL="http://api.railway.internal:8080", API_METRICS_BEARER_TOKEN="tok")
    run(shell, ["prometheus", *ARGV_PRINTER, f"--config.file={src}"], env)
    job = yaml.safe_load((tmp_path / "r/scrape.d/api.yml").read_text())["scrape_configs"][0]
    assert job["scheme"] == "http" and job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api.railway.internal:8080"]
    assert job["authorization"]["type"] == "Bearer"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("env_extra,msg", [
    ({"API_METRICS_URL": "api.example.com/metrics"}, "must start with http"),
    ({"API_METRICS_URL": "https://user:pw@api.example.com/metrics"}, "must not contain credentials"),
    ({"API_METRICS_URL": "https://api.example.com/metrics?x=1"}, "no query string"),
    ({"API_METRICS_URL": "https://api.example.com/m", "API_METRICS_BEARER_TOKEN": "t",
      "API_METRICS_BASIC_AUTH_USER": "u", "API_METRICS_BASIC_AUTH_PASSWORD": "p"}, "not both"),
    ({"API_METRICS_URL": "https://api.example.com/m", "API_METRICS_BASIC_AUTH_USER": "u"}, "PASSWORD is not"),
    ({"API_METRICS_URL": "https://api.example.com/m", "API_SERVICE_NAME": "a\"b"}, "may contain only"),
])
def test_api_scrape_job_refuses_bad_variables(shell, env_extra, msg, tmp_path):
    src = ROOT / "prometheus/prometheus.yml"
    p = run(shell, ["prometheus", *ARGV_PRINTER, f"--config.file={src}"], railway(tmp_path, **env_extra), check=False)
    assert p.returncode == 1 and msg in p.stderr and p.stdout == ""


@pytest.mark.parametrize("shell", SHELLS)
def test_port_mismatch_is_logged(shell, tmp_path):
    p = run(shell, ["loki", *ARGV_PRINTER], railway(tmp_path, PORT="8080", OBS_HEALTH_PORT="3100"))
    assert "set the service variable PORT=3100" in p.stderr


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed")
def test_collector_image_busybox_without_applet_links(tmp_path):
    """The collector image has only /busybox/busybox: obs-start runs its applets through it."""
    bb = Path("/bin/busybox")
    if not bb.exists():
        pytest.skip("busybox is not at /bin/busybox")
    src = ROOT / "otelcol/config.yaml"
    env = {"PATH": str(tmp_path / "empty"), "RAILWAY_PRIVATE_DOMAIN": "otelcol.railway.internal",
           "OBS_RENDER_DIR": str(tmp_path / "r")}
    p = subprocess.run([str(bb), "sh", str(OBS_START), "otelcol", *ARGV_PRINTER, f"--config={src}"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    text = Path(str(tmp_path / "r") + str(src)).read_text()
    assert "tempo.railway.internal:4317" in text and '"[::]:4317"' in text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (volume ownership and privilege drop)")
def test_root_gives_the_volume_to_the_image_user_and_drops(tmp_path):
    """RAILWAY_RUN_UID=0 (Railway's volumes are root-owned): chown the volume, run as the image's user."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "old").write_text("x")
    env = railway(tmp_path, OBS_RUN_AS="65534:65534", RAILWAY_VOLUME_MOUNT_PATH=str(vol))
    os.chmod(tmp_path, 0o755)
    p = run(["dash"], ["prometheus", sys.executable, "-c", "import os; print(os.getuid(), os.getgid())"], env)
    assert p.stdout.split() == ["65534", "65534"]
    assert (vol / "old").stat().st_uid == 65534 and vol.stat().st_uid == 65534


@pytest.mark.parametrize("shell", SHELLS)
def test_collector_forwarding_from_variables(shell, tmp_path):
    """OTLP_FORWARD_ENDPOINT switches logs and traces forwarding on: the overlay's files join the command
    line, rendered, and the endpoint and token become secret files; neither variable reaches the collector."""
    token = "forward-token-0123456789abcdef"
    env = railway(tmp_path, OTLP_FORWARD_ENDPOINT="https://otlp-gateway.example/otlp", OTLP_FORWARD_TOKEN=token,
                  OBS_OTELCOL_CONFIG_DIR=str(ROOT / "otelcol"))
    out = printed(run(shell, ["otelcol", *ARGV_PRINTER, f"--config={ROOT / 'otelcol/config.yaml'}"], env))
    configs = [a.split("=", 1)[1] for a in out["argv"] if a.startswith("--config=")]
    assert [Path(c).name for c in configs] == ["config.yaml", "forward.yaml", "forward-local-true.yaml"]
    assert all(c.startswith(str(tmp_path / "r")) for c in configs), configs
    secrets = tmp_path / "r" / "secrets"
    assert (secrets / "otlp_forward_endpoint").read_text() == "https://otlp-gateway.example/otlp"
    assert (secrets / "otlp_forward_token").read_text() == token
    assert stat.S_IMODE((secrets / "otlp_forward_token").stat().st_mode) == 0o600
    assert "OTLP_FORWARD_TOKEN" not in out["env"] and "OTLP_FORWARD_ENDPOINT" not in out["env"]
    assert str(secrets / "otlp_forward_token") in Path(configs[1]).read_text()
    only = printed(run(shell, ["otelcol", *ARGV_PRINTER, f"--config={ROOT / 'otelcol/config.yaml'}"],
                       {**env, "OTLP_FORWARD_LOCAL": "false", "OBS_RENDER_DIR": str(tmp_path / "r2")}))
    assert Path([a for a in only["argv"] if a.startswith("--config=")][-1]).name == "forward-local-false.yaml"
    bad = run(shell, ["otelcol", *ARGV_PRINTER], {**env, "OTLP_FORWARD_LOCAL": "maybe"}, check=False)
    assert bad.returncode == 1 and "OTLP_FORWARD_LOCAL" in bad.stderr
    plain = {**railway(tmp_path), "OBS_RENDER_DIR": str(tmp_path / "r3")}
    off = printed(run(shell, ["otelcol", *ARGV_PRINTER, f"--config={ROOT / 'otelcol/config.yaml'}"], plain))
    assert len([a for a in off["argv"] if a.startswith("--config=")]) == 1


@pytest.mark.parametrize("shell", SHELLS)
def test_grafana_longterm_datasource_from_variables(shell, tmp_path):
    prov = tmp_path / "prov"
    shutil.copytree(ROOT / "grafana/provisioning", prov)
    lt = {"PROMETHEUS_LONGTERM_URL": "https://prometheus-prod.example/api/prom",
          "PROMETHEUS_LONGTERM_USERNAME": "12345", "PROMETHEUS_LONGTERM_PASSWORD": "glc-read-token-0123456789"}
    env = railway(tmp_path, GF_SECURITY_ADMIN_PASSWORD="correct-horse-battery-staple", GF_PATHS_PROVISIONING=str(prov),
                  GF_PATHS_DATA=str(tmp_path), GRAFANA_RUN=ARGV_PRINTER[0], **lt)
    cmd = ["grafana", "/bin/sh", str(ROOT / "grafana/entrypoint.sh"), *ARGV_PRINTER[1:]]
    out = printed(run(shell, cmd, env))
    assert not set(lt) & set(out["env"])
    rendered = Path(out["env"]["GF_PATHS_PROVISIONING"]) / "datasources/prometheus-longterm.yml"
    text = rendered.read_text()
    assert "uid: prometheus-longterm" in text and "/run/obs-secrets" not in text
    secrets = tmp_path / "r" / "secrets"
    for f, var in (("url", "PROMETHEUS_LONGTERM_URL"), ("password", "PROMETHEUS_LONGTERM_PASSWORD")):
        assert (secrets / f"prometheus_longterm_{f}").read_text() == lt[var]
        assert str(secrets / f"prometheus_longterm_{f}") in text
    missing = {k: v for k, v in env.items() if k != "PROMETHEUS_LONGTERM_PASSWORD"}
    p = run(shell, cmd, {**missing, "OBS_RENDER_DIR": str(tmp_path / "r2")}, check=False)
    assert p.returncode == 1 and "PROMETHEUS_LONGTERM_PASSWORD" in p.stderr
