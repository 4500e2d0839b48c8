"""The real binaries of the pinned versions: configs rendered the Railway way (Railway's environment)
load; the railway files' healthcheck paths answer 200 on the native stack; started by obs-start in
Railway mode, each service answers its healthcheck on IPv4 and IPv6 (it listens on [::])."""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_tool, running_stack
from tests.harness import compose
from tests.harness.stack import LAUNCH_ARGV, NativeStack
from tests.railway.railwaylib import (DEPLOYS, OBS_START_IN_IMAGE, health_port, railway_config, railway_env, run_spec,
                                     service_spec)


@pytest.fixture(autouse=True)
def _needs_root():
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(reason)


def sh_for(service: str) -> list[str]:
    return ["/bin/sh", OBS_START_IN_IMAGE, service]


CHECKS = {
    # service: (tool, binary, args)
    "prometheus": ("prometheus", "promtool", ["check", "config", "/etc/prometheus/prometheus.yml"]),
    "alertmanager": ("alertmanager", "amtool", ["check-config", "/etc/alertmanager/alertmanager.yml"]),
    "otelcol": ("otelcol", "otelcol", ["validate", "--config=/etc/otelcol-contrib/config.yaml"]),
    "blackbox-exporter": ("blackbox", "blackbox_exporter", ["--config.file=/etc/blackbox/blackbox.yml", "--config.check"]),
}
EXTRA_ENV = {
    "prometheus": {"API_METRICS_URL": "https://api-production.up.railway.app/metrics", "API_METRICS_BEARER_TOKEN": "t0k"},
    "alertmanager": {"SLACK_OPS_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/X",
                     "PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef"},
}


@pytest.mark.parametrize("service", sorted(CHECKS))
def test_rendered_config_loads_in_the_real_binary(service, tmp_path):
    tool, binary, args = CHECKS[service]
    require_tool(tool, binary)
    render = tmp_path / "render"
    spec = service_spec(service, [*sh_for(service), f"/opt/obs-bin/{binary}", *args],
                        railway_env(service, **EXTRA_ENV.get(service, {})), render, tool=tool, base=tmp_path / "b")
    p = run_spec(spec)
    assert p.returncode == 0, f"{binary} rejected the Railway-rendered {service} config:\n{p.stdout[-3000:]}"
    text = "\n".join(f.read_text() for f in (render / "r").rglob("*.y*ml") if f.is_file())
    assert ".railway.internal" in text or service == "blackbox-exporter", "nothing was rendered"
    if service == "prometheus":
        m = re.search(r"SUCCESS: (\d+) rule files? found", p.stdout)
        assert m and int(m.group(1)) >= 1, p.stdout
        assert (render / "r/scrape.d/api.yml").is_file()
    if service == "alertmanager":
        m = re.search(r"(\d+) templates?", p.stdout)
        assert m and int(m.group(1)) >= 1, f"the templates folder did not follow the rendered config:\n{p.stdout}"
        assert (render / "r/secrets/slack_ops_webhook_url").is_file()


# ---------------------------------------------------------------- healthcheck paths, native stack

NATIVE = ["prometheus", "alertmanager", "webhook-sink", "otelcol", "blackbox-exporter", "simulator",
          "railway-exporter", "vercel-exporter", "supabase-exporter", "github-exporter", "ingest", "demo-app"]
# No native binary (AGPL, never built here): their Railway healthcheck path must be the one their compose
# healthcheck probes, which the Docker tier proves answers (`up --wait`).
IMAGE_ONLY = ["loki", "tempo", "grafana"]
_stack: dict = {}


@pytest.fixture(scope="module")
def stack():
    # The github bridge refuses to start without repositories (compose leaves it to the user).
    with running_stack(NativeStack(NATIVE, env={**compose.read_env(), "GITHUB_REPOSITORIES": "demo-org"},
                                   ready_timeout=60)) as s:
        yield s


def get(url: str, timeout: float = 3) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


HEALTH_PATHS = sorted(s for s, d in DEPLOYS.items() if "healthcheckPath" in railway_config(d.railway_file)["deploy"])


def test_every_healthcheck_path_is_covered():
    assert set(HEALTH_PATHS) <= set(NATIVE) | set(IMAGE_ONLY), set(HEALTH_PATHS) - set(NATIVE) - set(IMAGE_ONLY)


@pytest.mark.parametrize("service", IMAGE_ONLY)
def test_image_only_healthcheck_path_is_the_compose_one(service):
    path = railway_config(DEPLOYS[service].railway_file)["deploy"]["healthcheckPath"]
    url = compose.services()[service].health_url
    assert url and url.split(str(health_port(service)), 1)[1] == path, f"{service}: railway {path}, compose {url}"


@pytest.mark.parametrize("service", sorted(set(HEALTH_PATHS) & set(NATIVE)))
def test_healthcheck_path_answers_on_the_real_service(service, stack):
    path = railway_config(DEPLOYS[service].railway_file)["deploy"]["healthcheckPath"]
    assert service in stack.running, f"{service}: {stack.skipped.get(service)}"
    port = health_port(service)
    assert get(stack.url(service, port, path)) == 200, f"{service}: {path} on :{port}\n{stack.log(service)}"
    # the check means something: an unknown path is not 200 (blackbox's UI and the collector's health
    # endpoint answer every path)
    if service not in ("blackbox-exporter", "otelcol"):
        assert get(stack.url(service, port, "/obs-no-such-path")) != 200


# ---------------------------------------------------------------- Railway mode: listen on [::]

LISTEN = {
    # service: tool providing the binary, path of the binary in the image -> native binary
    "prometheus": ("prometheus", "prometheus"),
    "alertmanager": ("alertmanager", "alertmanager"),
    "otelcol": ("otelcol", "otelcol"),
    "blackbox-exporter": ("blackbox", "blackbox_exporter"),
}


def _ipv6() -> bool:
    return Path("/proc/net/if_inet6").exists()


def test_railway_mode_services_answer_on_ipv4_and_ipv6(tmp_path):
    """Each service, started exactly as its railway.toml startCommand says (the image binary swapped for
    the native build), in its own network namespace with Railway's variables, answers its healthcheck
    path on 127.0.0.1 and on ::1: it listens on [::], which Railway's IPv6 private network reaches."""
    for tool, binary in LISTEN.values():
        require_tool(tool, binary)
    if not _ipv6():
        pytest.skip("this kernel has IPv6 disabled")
    procs = {}
    try:
        for service, (tool, binary) in LISTEN.items():
            cfg = railway_config(DEPLOYS[service].railway_file)["deploy"]
            import shlex
            tokens = shlex.split(cfg["startCommand"])
            i = tokens.index(OBS_START_IN_IMAGE)
            argv = ["/bin/sh", *tokens[i:i + 2], f"/opt/obs-bin/{binary}", *tokens[i + 3:]]
            base = tmp_path / service
            spec = service_spec(service, argv, railway_env(service), base / "render", tool=tool, base=base)
            log = open(base / "log", "wb")
            procs[service] = (subprocess.Popen(
                ["unshare", "--mount", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                 *LAUNCH_ARGV, str(spec)], cwd=compose.ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True), base / "log", cfg["healthcheckPath"])
        probe = ("import sys,time,urllib.request as u\n"
                 "port,path=sys.argv[1],sys.argv[2]\n"
                 "for host in ('127.0.0.1','[::1]'):\n"
                 "  end=time.time()+60\n"
                 "  while True:\n"
                 "    try:\n"
                 "      r=u.urlopen(f'http://{host}:{port}{path}',timeout=2); assert r.status==200; break\n"
                 "    except Exception as e:\n"
                 "      if time.time()>end: print(host, e); sys.exit(1)\n"
                 "      time.sleep(0.3)\n")
        for service, (proc, log, path) in procs.items():
            port = health_port(service)
            p = subprocess.run(["nsenter", f"--net=/proc/{proc.pid}/ns/net", sys.executable, "-c", probe, str(port), path],
                               capture_output=True, text=True, timeout=150)
            assert p.returncode == 0, (f"{service} (Railway mode) does not answer {path} on both stacks: {p.stdout}\n"
                                       f"{log.read_text(errors='replace')[-2000:]}")
            assert "starting on Railway" in log.read_text(errors="replace")
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _, _ in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
