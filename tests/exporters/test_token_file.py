"""A token file that exists but the exporter cannot read is an error, never demo mode.

Missing or empty still means "no token" (compose always mounts the secrets folder, so demo mode works
until a token is written). An existing file the exporter's uid cannot read (the image runs as 10001; a
host file made with `umask 077` is the usual cause) keeps the exporter in live mode without data, logs one
error naming the variable, the file and the uid, counts `reason="token_unreadable"` poll errors with
`<p>_up 0`, and recovers without a restart once the file can be read. The simulator and the bridge run over
real HTTP on 127.0.0.1; as root the bridge is started as uid 10001, because root reads every file."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from tests.exporters.bridgetest import PY, Exporter, _base_env, http, stop_all, wait_for
from tests.support.ports import free_port
from obs_bridges import config

SECRET = "ghp_TokenFileValue_7731"
ROOT_USER = os.geteuid() == 0
BRIDGE_UID = 10001 if ROOT_USER else os.getuid()

# Runs the bridge as BRIDGE_UID: import the bridge first (the interpreter may live where only root can
# read, e.g. /root/.pyenv), drop root, then set the parent-death signal again (a uid change clears the one
# bridgetest's launcher set), so a killed pytest still takes this process with it.
_AS_UID = (
    "import os, sys\n"
    "ppid = os.getppid()\n"
    "uid = int(sys.argv[1])\n"
    "from obs_bridges import cli, core, github\n"
    "from tests.support import pdeathsig\n"
    "if os.geteuid() == 0:\n"
    "    os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
    "    pdeathsig.arm(ppid)\n"
    "sys.exit(cli.main(sys.argv[2:]))\n")
ROOT = Path(__file__).resolve().parents[2]  # _AS_UID imports tests.support from here


@pytest.fixture
def bridge_as_uid(tmp_path):
    """start(platform, env) -> a bridge running as BRIDGE_UID; torn down like bridgetest's procs."""
    started: list[Exporter] = []

    def start(platform: str, env: dict) -> Exporter:
        port = free_port()
        e = Exporter([PY, "-c", _AS_UID, str(BRIDGE_UID), platform], _base_env({"LISTEN_PORT": port, "PYTHONPATH": ROOT, **env}),
                     port, str(tmp_path / f"{platform}-{port}.log"))
        started.append(e)
        try:
            wait_for(lambda: http("GET", e.url + "/healthz", timeout=1)[0] == 200, 20, what=f"{platform} readiness")
        except AssertionError as err:
            raise AssertionError(f"{err}\nlog tail:\n{e.logs()[-2000:]}") from None
        return e

    try:
        yield start
    finally:
        left = stop_all(started)
        if left:
            pytest.fail(f"processes survived teardown (killed now): {left}")


@pytest.fixture
def shared_dir():
    """A folder uid 10001 can traverse (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="token-file-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)


def gh_env(sim, token_file: Path) -> dict:
    # Demo mode is on offer (the simulator URL is set): an unreadable file must not take it. The metadata
    # upstream polls every 10 minutes: it recovers in seconds only because an unreadable file is re-checked
    # every core.TOKEN_RETRY_SECONDS instead of backing off from the interval.
    return {"OBS_DEMO_SIMULATOR_URL": sim.url, "GITHUB_API_URL": sim.url + "/github",
            "GITHUB_TOKEN_FILE": str(token_file), "GITHUB_REPOSITORIES": "demo-org",
            "GITHUB_POLL_INTERVAL_SECONDS": "1", "GITHUB_METADATA_INTERVAL_SECONDS": "600"}


def unreadable_errors(exp) -> float:
    return exp.value("github_exporter_poll_errors_total", reason="token_unreadable") or 0


def token_lines(exp, token_file: Path) -> list[dict]:
    """Warning and error lines about the token file."""
    return [ln for ln in exp.log_lines() if ln["level"] in ("warning", "error") and str(token_file) in ln["msg"]]


def check_unreadable_then_recovery(sim, exp, token_file: Path, make_readable) -> None:
    # both upstreams fail several polls (1 s apart): enough to show the error is not logged per poll
    wait_for(lambda: unreadable_errors(exp) >= 4, 20, what="token_unreadable poll errors")
    assert exp.value("github_exporter_info", mode="live") == 1, "an unreadable token file chose demo mode"
    assert all("demo" not in s.labels for s in exp.samples()), "demo data from an unreadable token file"
    assert sim.requests("github") == [], "the API was called without a token"
    assert exp.value("github_up") == 0
    assert exp.value("github_exporter_upstream_up", upstream="runs") == 0
    lines = token_lines(exp, token_file)
    assert len(lines) == 1, f"expected one log line about the token file, got {lines}"
    line = lines[0]
    assert line["level"] == "error" and "GITHUB_TOKEN_FILE" in line["msg"]
    assert f"uid {BRIDGE_UID} " in line["msg"] and "chmod 0644" in line["msg"]
    assert line["file"] == str(token_file) and line["uid"] == BRIDGE_UID

    make_readable()
    wait_for(lambda: exp.value("github_up") == 1, 20, what="recovery once the file can be read")
    assert sim.requests("github"), "no API request after recovery"
    assert token_lines(exp, token_file) == lines, "the error was logged again"
    assert [ln for ln in exp.log_lines() if "can be read again" in ln["msg"]], "recovery was not logged"
    for text in (exp.logs(), exp.metrics_text(), str(exp.health())):
        assert SECRET not in text


def test_token_file_the_uid_cannot_read(procs, bridge_as_uid, shared_dir):
    """The usual case: a 0600 file owned by someone else. Live mode, one error, then recovery on chmod."""
    sim = procs.sim("--github-repos", "2")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    token_file = shared_dir / "github_token"
    token_file.write_text(SECRET + "\n")
    token_file.chmod(0)
    exp = bridge_as_uid("github", gh_env(sim, token_file))
    check_unreadable_then_recovery(sim, exp, token_file, lambda: token_file.chmod(0o644))


def test_token_path_that_is_a_directory(procs, bridge_as_uid, shared_dir):
    """Compose creates a missing bind source as a directory: no demo data, then recovery on a real file."""
    sim = procs.sim("--github-repos", "2")
    sim.ctl("POST", "rate", {"platform": "github", "per_hour": 0})
    token_file = shared_dir / "github_token"
    token_file.mkdir()
    exp = bridge_as_uid("github", gh_env(sim, token_file))

    def replace_with_file():
        token_file.rmdir()
        token_file.write_text(SECRET)

    check_unreadable_then_recovery(sim, exp, token_file, replace_with_file)


# ---------------------------------------------------------------- the mode decision, in-process

def _common(token_file: Path):
    return config.common("github", {"OBS_DEMO_SIMULATOR_URL": "http://127.0.0.1:1",
                                    "GITHUB_TOKEN_FILE": str(token_file)},
                         "GITHUB_API_URL", "GITHUB_TOKEN", "https://api.github.com")


@pytest.mark.parametrize("kind", ["missing", "empty", "blank"])
def test_missing_or_empty_file_still_means_demo(tmp_path, kind):
    f = tmp_path / "github_token"
    if kind != "missing":
        f.write_text("" if kind == "empty" else " \n")
    assert _common(f).demo


@pytest.mark.parametrize("kind", ["directory", "dangling symlink", "fifo", "not utf-8"])
def test_existing_file_that_cannot_be_read_means_live(tmp_path, kind):
    """A FIFO must not block the poll either (open() would wait for a writer forever)."""
    f = tmp_path / "github_token"
    if kind == "directory":
        f.mkdir()
    elif kind == "dangling symlink":
        f.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(f)
    else:
        f.write_bytes(b"\xff\xfe token")
    out: list = []
    t = threading.Thread(target=lambda: out.append(_common(f)), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the blocked reader (old behaviour) before failing
        os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail(f"reading the token file blocked: {kind}")
    c = out[0]
    assert not c.demo and c.api_url == "https://api.github.com"
    r = c.token.read()
    assert r.value is None and r.state == "unreadable"
    assert str(f) in r.problem and "GITHUB_TOKEN_FILE" in r.problem and f"uid {os.getuid()} " in r.problem
