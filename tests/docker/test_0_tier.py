"""Static (runs everywhere): where the Docker tier cannot run it skips with a reason CI's expected-skips
list accepts, and where it must run (OBS_DOCKER_TIER=require, the workflow's docker job) it fails instead,
so neither a machine without Docker nor a runner that lost it is green by accident."""
from __future__ import annotations

import pytest

from tests import skipcheck
from tests.docker import composectl

NODE = "tests/docker/test_1_stack.py::test_every_service_is_running_and_healthy"


def _fake_docker(tmp_path, script: str):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "docker").write_text("#!/bin/sh\n" + script)
    (d / "docker").chmod(0o755)
    return d


@pytest.mark.parametrize("script,reason", [
    (None, "no docker CLI on PATH"),
    ("echo 'Cannot connect to the Docker daemon' >&2; exit 1\n", "no Docker engine answers"),
])
def test_skip_reasons_are_the_expected_ones(tmp_path, monkeypatch, script, reason):
    monkeypatch.delenv("OBS_DOCKER_TIER", raising=False)
    monkeypatch.setenv("PATH", str(_fake_docker(tmp_path, script) if script else tmp_path))
    got = composectl.docker_unavailable()
    assert got and got.startswith(reason), got
    assert not skipcheck.unexpected([(NODE, f"Docker tier: {got}")], skipcheck.load()), got
    # and the list does not accept just anything for the Docker tier
    assert skipcheck.unexpected([(NODE, "Docker tier: compose failed")], skipcheck.load())


def test_an_old_compose_is_a_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("OBS_DOCKER_TIER", raising=False)
    monkeypatch.setenv("PATH", str(_fake_docker(tmp_path, """case "$1" in
  info) echo 28.0.0 ;;
  compose) echo 2.20.2 ;;
esac
""")))
    assert composectl.docker_unavailable() == "Docker Compose 2.20.2 is older than 2.24.4"


@pytest.mark.parametrize("mode,outcome", [("", pytest.skip.Exception), ("require", pytest.fail.Exception)])
def test_required_tier_fails_instead_of_skipping(tmp_path, monkeypatch, mode, outcome):
    monkeypatch.setenv("OBS_DOCKER_TIER", mode)
    monkeypatch.setenv("PATH", str(tmp_path))
    # BaseException: pytest's skip and fail outcomes are not Exceptions, and an uncaught skip would skip this test
    with pytest.raises(BaseException) as got:
        next(composectl.started(composectl.Compose("obs-dt-never-started")))
    assert got.type is outcome and "Docker tier: no docker CLI on PATH" in str(got.value), got
