"""Every shipped config file, loaded by its real tool at the pinned version, at the path and with
the user the container uses (compose mounts reproduced by the harness). Loki's and Tempo's configs are
checked against their configuration reference (test_backend_configs.py) and loaded by their images in
the Docker tier: the AGPL binaries are never built here."""
from __future__ import annotations

import re

import pytest

from tests.conftest import install_tools, require_tool
from tests.harness.stack import NativeStack, run_with_service_files


@pytest.fixture(autouse=True)
def _needs_root():
    reason = NativeStack.unavailable_reason()
    if reason:
        pytest.skip(reason)


def check(service: str, tool: str, binary: str, args: list[str]) -> str:
    require_tool(tool, binary)
    p = run_with_service_files(service, tool, binary, args)
    assert p.returncode == 0, f"{binary} {' '.join(args)} rejected the {service} config:\n{p.stdout[-3000:]}"
    return p.stdout


def test_prometheus_config_and_rules():
    out = check("prometheus", "prometheus", "promtool", ["check", "config", "/etc/prometheus/prometheus.yml"])
    # The rule_files glob must match real files, or promtool has nothing to check.
    m = re.search(r"SUCCESS: (\d+) rule files? found", out)
    assert m and int(m.group(1)) >= 1, out


def test_prometheus_web_config():
    check("prometheus", "prometheus", "promtool", ["check", "web-config", "/etc/prometheus/web.yml"])


def test_alertmanager_config():
    check("alertmanager", "alertmanager", "amtool", ["check-config", "/etc/alertmanager/alertmanager.yml"])


def test_otelcol_config():
    check("otelcol", "otelcol", "otelcol", ["validate", "--config=/etc/otelcol-contrib/config.yaml"])


def test_blackbox_config():
    check("blackbox-exporter", "blackbox", "blackbox_exporter",
          ["--config.file=/etc/blackbox/blackbox.yml", "--config.check"])


@pytest.mark.parametrize("tool", [t.name for t in install_tools.TOOLS if t.version_flag])
def test_binary_reports_pinned_version(tool):
    """The binary we test with is the release compose pins, not some other build."""
    import subprocess
    t = install_tools.BY_NAME[tool]
    path = require_tool(tool)
    want = install_tools.read_versions()[t.version_key].lstrip("v")
    out = subprocess.run([str(path), *t.version_flag], capture_output=True, text=True, timeout=30)
    text = out.stdout + "\n" + out.stderr  # sloth prints its version without a newline, then logs to stderr
    assert re.search(rf"(?<![\d.]){re.escape(want)}(?![\d.])", text), f"{path} {t.version_flag} says:\n{text[:500]}"
