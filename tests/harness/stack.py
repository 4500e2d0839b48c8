"""The native stack: the real binaries of the services in docker-compose.yml, run with the compose
file's own commands and mounted config files, without Docker.

Each service gets its own network namespace (so every process binds its usual ports, as in its
container) joined to a bridge on a private 127.x.y.0/24 loopback subnet (route_localnet), and its own
/etc/hosts mapping every compose service name to its address. Config files stay byte-for-byte.

Loki and Tempo run as our OTLP sink (STAND_INS below, tests/harness/otlp_sink.py) at their compose hostnames.

Usage from a script:   with NativeStack(["prometheus", "loki"]) as s: print(s.url("loki", 3100))
Usage from pytest:     the `native_stack` fixture in tests/conftest.py.
Requires root, iproute2 and overlayfs; `NativeStack.unavailable_reason()` says why not when it cannot run.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from scripts import install_tools
from tests.support.procs import terminate
from tests.support.wait import StopWaiting, WaitTimeout, wait_for

from . import compose

_STACK_NUMBERS = itertools.count(random.randint(0, 999))

LAUNCH = Path(__file__).with_name("launch.py")
# launch.py imports tests.support: run it as a module of the repository (cwd = compose.ROOT).
LAUNCH_ARGV = [sys.executable, "-m", "tests.harness.launch"]

# compose image -> (tool name, binary) of the native build. Images listed in none of the tables here have
# nothing that runs natively (Grafana: AGPL and not buildable here; see README).
NATIVE_BINARIES = {
    "prom/prometheus": ("prometheus", "prometheus"),
    "prom/alertmanager": ("alertmanager", "alertmanager"),
    "obs-stack/otelcol": ("otelcol", "otelcol"),
    "prom/blackbox-exporter": ("blackbox", "blackbox_exporter"),
}
# Python services run on the host interpreter: our own image by module, and the stock python image
# (which runs a mounted script) by its command minus the leading `python`.
PYTHON_IMAGES = {"obs-stack/bridges": ["-m", "obs_bridges"], "obs-stack/demo": ["-m", "obs_demo"], "python": []}
# compose image -> OTLP sink profile that runs in its place. Loki and Tempo are AGPL: this project never
# downloads or builds them (issue 11). The native tests use them only as destinations, so our OTLP receiver
# stands in, listening where their own config files say and recording what arrives (otlp_sink.py). Loki and
# Tempo themselves (configs, LogQL, TraceQL) are tested through their images in the Docker tier (tests/docker).
STAND_INS = {"grafana/loki": "loki", "grafana/tempo": "tempo"}


class StackError(RuntimeError):
    pass


@dataclass
class Running:
    name: str
    ns: str
    ip: str
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image


def stand_in(svc: compose.Service) -> str | None:
    """The OTLP sink profile that runs in place of `svc`, or None when the service itself runs."""
    return STAND_INS.get(_image_name(svc.image))


def native_command(svc: compose.Service) -> tuple[list[str], dict] | str:
    """argv and extra mounts to run `svc` natively, or the reason it cannot run here."""
    image = _image_name(svc.image)
    if image in STAND_INS:
        # Records go to the service's named volume (so a restart keeps them); the service's own command
        # line is passed on, for its -config.file. A Python process run as root, like the others here.
        data = [m.target for m in svc.mounts if m.kind == "volume"][:1]
        argv = [sys.executable, "-m", "tests.harness.otlp_sink", "--as", STAND_INS[image],
                *(["--data", data[0]] if data else []), "--", *svc.command]
        return argv, {"python": True}
    if image in NATIVE_BINARIES:
        tool, binary = NATIVE_BINARIES[image]
        path = install_tools.tool_path(tool, binary)
        if path is None:
            return install_tools.unavailable_reason(tool)
        mount = {"source": str(path.parent), "target": "/opt/obs-bin", "is_dir": True, "read_only": True}
        return [f"/opt/obs-bin/{binary}", *svc.command], {"mount": mount}
    if image in PYTHON_IMAGES:
        cmd = list(svc.command)
        if image == "python":
            if not cmd or cmd[0] not in ("python", "python3"):
                return f"{svc.name}: python image command must start with python: {cmd}"
            cmd = cmd[1:]
        else:
            module = PYTHON_IMAGES[image][1]
            probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
            if probe.returncode != 0:
                return f"the {module} package is not installed (scripts/test installs it)"
        return [sys.executable, *PYTHON_IMAGES[image], *cmd], {"python": True}
    return f"no native binary for image {svc.image} on this machine"


def compose_user(svc: compose.Service) -> tuple[int | None, int | None]:
    """uid, gid of the compose `user:` ("uid" or "uid:gid"), or (None, None) for the image default."""
    if not svc.user:
        return None, None
    u, _, g = svc.user.partition(":")
    return int(u), int(g or u)


def service_mounts(svc: compose.Service, volumes_dir: Path, uid: int | None, gid: int | None,
                   keep=lambda m: True) -> list[dict]:
    """launch.py mounts for the compose volumes of `svc`: bind mounts as they are, each named volume as a
    directory under volumes_dir owned by the service user (what Docker does for a fresh volume at a path
    the image's user owns)."""
    mounts = []
    for m in svc.mounts:
        if not keep(m):
            continue
        if m.kind == "volume":
            d = volumes_dir / m.source
            if not d.exists():
                d.mkdir(parents=True)
                if uid is not None:
                    os.chown(d, uid, gid if gid is not None else uid)
            mounts.append({"source": str(d), "target": m.target, "is_dir": True, "read_only": False})
        else:
            if not Path(m.source).exists():
                raise StackError(f"{svc.name}: compose mounts {m.source}, which does not exist")
            mounts.append({"source": m.source, "target": m.target, "is_dir": Path(m.source).is_dir(),
                           "read_only": m.read_only})
    return mounts


def write_spec(base: Path, mounts: list[dict], argv: list[str], env: dict, uid: int | None, gid: int | None,
               hosts: str = "127.0.0.1\tlocalhost\n::1\tlocalhost\n", cwd: str = "/") -> Path:
    """Write the launch.py spec for one process whose overlay root lives under `base`."""
    spec = {"root": str(base / "root"), "upper": str(base / "upper"), "work": str(base / "work"),
            "hosts": hosts, "mounts": mounts, "argv": argv, "env": env, "uid": uid, "gid": gid, "cwd": cwd}
    path = base / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def run_spec(spec: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a one-shot launch.py spec in a private mount namespace (host network)."""
    return subprocess.run(["unshare", "--mount", *LAUNCH_ARGV, str(spec)], cwd=compose.ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


class NativeStack:
    def __init__(self, services: list[str] | None = None, env: dict[str, str] | None = None,
                 ready_timeout: float = 90.0, keep_dir: bool = False):
        self.env = env if env is not None else compose.read_env()
        self.all = compose.services(self.env)
        wanted = services or list(self.all)
        unknown = set(wanted) - set(self.all)
        if unknown:
            raise StackError(f"not compose services: {sorted(unknown)}")
        self.wanted = wanted
        self.ready_timeout = ready_timeout
        self.keep_dir = keep_dir
        # Unique among the stacks of this process (a counter: two random digits collided when a module's
        # stack and the session's ran at once) and, by the pid, among concurrent test processes.
        n = next(_STACK_NUMBERS)
        self.run_id = f"{os.getpid() % 100000}{n % 1000:03d}"
        self.subnet = f"127.{100 + os.getpid() % 100}.{1 + n % 254}"
        self.bridge = f"obsbr{self.run_id}"[:15]
        self.dir = Path(tempfile.mkdtemp(prefix="obs-native-"))
        self.running: dict[str, Running] = {}
        self.skipped: dict[str, str] = {}
        self.ips = {name: f"{self.subnet}.{10 + i}" for i, name in enumerate(sorted(self.all))}
        self._netns: list[str] = []
        self._bridge_up = False

    # ------------------------------------------------------------------ public API
    @staticmethod
    def unavailable_reason() -> str | None:
        if os.geteuid() != 0:
            return "the native stack needs root (network namespaces, mounts)"
        if shutil.which("ip") is None:
            return "iproute2 (`ip`) is not installed"
        if "overlay" not in Path("/proc/filesystems").read_text():
            return "the kernel has no overlayfs"
        return None

    def url(self, service: str, port: int, path: str = "") -> str:
        return f"http://{self.ips[service]}:{port}{path}"

    def ip(self, service: str) -> str:
        return self.ips[service]

    def stand_in(self, service: str) -> str | None:
        """The OTLP sink profile running as `service` (its records: otlp_sink.query), or None."""
        return stand_in(self.all[service])

    def log(self, service: str, lines: int = 60) -> str:
        r = self.running.get(service)
        return r.log_tail(lines) if r else f"({service} not running: {self.skipped.get(service, '?')})"

    def __enter__(self) -> "NativeStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "NativeStack":
        reason = self.unavailable_reason()
        if reason:
            raise StackError(reason)
        try:
            self._network()
            order = self._order()
            # Like a compose network: every service's address exists before anything starts, so an
            # early scrape gets "connection refused", not a cached "no route to host".
            for name in order:
                if not isinstance(native_command(self.all[name]), str):
                    self._netns_for(name)
            for name in order:
                self._start_one(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for r in reversed(list(self.running.values())):
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for r in self.running.values():
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait(timeout=5)
        for ns in self._netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._netns.clear()
        if self._bridge_up:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
            self._bridge_up = False
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, service: str) -> None:
        """Start one service again (stopping it first if it runs), keeping its volumes: outage tests."""
        if service in self.running:
            self.kill(service)
        self._start_one(service)

    def kill(self, service: str) -> None:
        terminate(self.running.pop(service).proc, timeout=15)

    # ------------------------------------------------------------------ internals
    def _sh(self, *args: str) -> None:
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode != 0:
            raise StackError(f"`{' '.join(args)}` failed: {p.stderr.strip()}")

    def _network(self) -> None:
        self._sh("ip", "link", "add", self.bridge, "type", "bridge")
        self._bridge_up = True
        self._sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        self._sh("ip", "link", "set", self.bridge, "up")
        # 127/8 addresses off the loopback device need route_localnet on every hop.
        self._sh("sysctl", "-qw", f"net.ipv4.conf.{self.bridge}.route_localnet=1")

    def _netns_for(self, name: str) -> str:
        ns = f"obs{self.run_id}-{name}"[:40]
        if ns in self._netns:
            return ns
        self._sh("ip", "netns", "add", ns)
        self._netns.append(ns)
        idx = sorted(self.all).index(name)
        host_if = f"ov{self.run_id}{idx:02d}"[:15]
        self._sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._sh("ip", "link", "set", host_if, "master", self.bridge, "up")
        self._sh("ip", "-n", ns, "link", "set", "lo", "up")
        self._sh("ip", "-n", ns, "addr", "add", f"{self.ips[name]}/24", "dev", "eth0")
        self._sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self._sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1",
                 "net.ipv4.conf.eth0.route_localnet=1")
        return ns

    def _order(self) -> list[str]:
        order: list[str] = []

        def visit(n: str, stack: tuple = ()) -> None:
            if n in order:
                return
            if n in stack:
                raise StackError(f"depends_on cycle: {' -> '.join(stack + (n,))}")
            for d in self.all[n].depends_on:
                if d in self.wanted:
                    visit(d, stack + (n,))
            order.append(n)

        for n in self.wanted:
            visit(n)
        return order

    def _hosts(self) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{ip}\t{name}" for name, ip in sorted(self.ips.items())]
        return "\n".join(lines) + "\n"

    def _start_one(self, name: str) -> None:
        svc = self.all[name]
        native = native_command(svc)
        if isinstance(native, str):
            self.skipped[name] = native
            return
        argv, extra = native
        uid, gid = (None, None) if extra.get("python") else compose_user(svc)
        mounts = service_mounts(svc, self.dir / "volumes", uid, gid)
        if "mount" in extra:
            mounts.append(extra["mount"])
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
               **svc.environment}
        if extra.get("python"):
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            env["HOME"] = os.environ.get("HOME", "/root")
        ns = self._netns_for(name)
        base = self.dir / "roots" / name
        if base.exists():  # restart: a fresh overlay, same volumes
            subprocess.run(["umount", "-R", str(base / "root")], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        spec_path = write_spec(base, mounts, argv, env, uid, gid, hosts=self._hosts(),
                               cwd=str(compose.ROOT) if extra.get("python") else "/")
        log_path = self.dir / f"{name}.log"
        logf = open(log_path, "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *LAUNCH_ARGV, str(spec_path)], cwd=compose.ROOT,
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        run = Running(name, ns, self.ips[name], proc, log_path)
        self.running[name] = run
        if svc.health_url:
            self._wait_healthy(run, svc.health_url)

    def _wait_healthy(self, run: Running, health_url: str) -> None:
        url = health_url.replace("127.0.0.1", run.ip).replace("localhost", run.ip)

        def healthy() -> bool:
            if run.proc.poll() is not None:
                raise StopWaiting(f"exited with {run.proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if 200 <= r.status < 300:
                        return True
                    raise OSError(f"HTTP {r.status}")
            except urllib.error.HTTPError as e:
                raise OSError(f"HTTP {e.code}") from None

        try:
            wait_for(healthy, self.ready_timeout, 0.25, f"{run.name} ready at {url}")
        except WaitTimeout as e:
            raise StackError(f"{e}; log tail:\n{run.log_tail()}") from None

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of each running service's process tree, for the closing-note numbers."""
        out = {}
        for name, r in self.running.items():
            total = 0
            pids = [r.proc.pid]
            while pids:
                pid = pids.pop()
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
                    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                    pids += [int(c) for c in children]
                except (OSError, StopIteration):
                    pass
            out[name] = total
        return out


def run_with_service_files(service: str, tool: str, binary: str, args: list[str],
                           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `binary args` once in `service`'s filesystem view: the compose mounts at their container
    paths (named volumes as empty dirs), as the compose user. Used to check each config file with its
    real tool exactly where the container reads it. Returns the completed process (stdout+stderr)."""
    svc = compose.services()[service]
    path = install_tools.tool_path(tool, binary)
    if path is None:
        raise StackError(install_tools.unavailable_reason(tool))
    with tempfile.TemporaryDirectory(prefix=f"obs-check-{service}-") as tmp:
        base = Path(tmp)
        uid, gid = compose_user(svc)
        mounts = service_mounts(svc, base / "volumes", uid, gid)
        mounts.append({"source": str(path.parent), "target": "/opt/obs-bin", "is_dir": True, "read_only": True})
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **svc.environment}
        return run_spec(write_spec(base, mounts, [f"/opt/obs-bin/{binary}", *args], env, uid, gid), timeout)
