"""`obs-bridge supabase scrape-config` writes its YAML with the YAML library (issue 14 part 5): project
names come from the Management API, so quotes, newlines, `#`, braces and non-ASCII in a name stay data, and
Prometheus (promtool) accepts the result."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
import yaml

from obs_bridges.supabase_tools import render
from tests.conftest import install_tools

HOSTILE = ['shop "prod"', "a\nb: injected", "x # comment", "{braces}: [1]", "café-ünïcode", "- dash", "'single'"]


@dataclass
class P:
    ref: str
    name: str


def test_hostile_project_names_stay_data():
    projects = [P(f"ref{i:02d}", n) for i, n in enumerate(HOSTILE)]
    doc = yaml.safe_load(render(projects, "https://{ref}.supabase.co/customer/v1/privileged/metrics", "/run/keys"))
    jobs = doc["scrape_configs"]
    assert [j["static_configs"][0]["labels"]["supabase_project"] for j in jobs] == HOSTILE
    assert [j["job_name"] for j in jobs] == [f"supabase-{n}" for n in HOSTILE]
    assert jobs[0]["static_configs"][0]["targets"] == ["ref00.supabase.co"]
    assert jobs[0]["basic_auth"] == {"username": "service_role", "password_file": "/run/keys/ref00"}
    assert set(jobs[0]) == {"job_name", "scheme", "metrics_path", "scrape_interval", "basic_auth", "static_configs"}


def test_promtool_accepts_the_output(tmp_path):
    promtool = install_tools.tool_path("prometheus", "promtool")
    if promtool is None:
        pytest.skip(f"promtool: {install_tools.unavailable_reason('prometheus')}")
    keys = tmp_path / "keys"
    keys.mkdir()
    projects = [P("abcdefghijklmnop", 'shop "prod" # main'), P("qrstuvwxyzabcdef", "staging: 2")]
    for p in projects:
        (keys / p.ref).write_text("key")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(render(projects, "https://{ref}.supabase.co/customer/v1/privileged/metrics", str(keys)))
    p = subprocess.run([str(promtool), "check", "config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
