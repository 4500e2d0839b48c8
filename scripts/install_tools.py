#!/usr/bin/env python3
"""Obtain the real binaries of the stack at exactly the versions pinned in .env.

Everything is built from the Go module proxy (the only source reachable from CI), except Grafana's LogQL
grammar (npm ci from the npm registry with a committed lock file), cached per name+version under
$OBS_TOOLS_DIR (default ~/.cache/obs-stack/tools), so a warm run builds nothing.
Standard library only: this runs before any Python dependency is installed.

Usage: scripts/install-tools [--only NAME[,NAME]] [--strict] [--list]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
GOPROXY = "https://proxy.golang.org"


def tools_dir() -> Path:
    return Path(os.environ.get("OBS_TOOLS_DIR", Path.home() / ".cache" / "obs-stack" / "tools"))


def read_versions(path: Path = ROOT / ".env") -> dict[str, str]:
    """Parse the KEY=VALUE lines of the versions file (comments and blanks ignored)."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise SystemExit(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def log(msg: str) -> None:
    print(f"[install-tools] {msg}", flush=True)


class Unavailable(Exception):
    """The source refuses this tool here (for example the module proxy answers 403)."""


class BuildError(Exception):
    pass


@dataclass
class Tool:
    name: str
    version_key: str
    binaries: list[str]
    build: Callable[["Tool", str, Path], None]
    version_flag: list[str] = field(default_factory=lambda: ["--version"])

    def dest(self, version: str) -> Path:
        return tools_dir() / self.name / version

    def bin(self, version: str, binary: str | None = None) -> Path:
        return self.dest(version) / "bin" / (binary or self.binaries[0])


# ---------------------------------------------------------------- helpers

@contextlib.contextmanager
def heartbeat(label: str):
    """Print a line every 30 s while the block runs, so long builds and downloads visibly progress."""
    start = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(30):
            log(f"  ... {label} still running ({int(time.monotonic() - start)} s)")

    threading.Thread(target=beat, daemon=True).start()
    try:
        yield
    finally:
        done.set()


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None, label: str = "") -> str:
    """Run a command with a heartbeat; BuildError with the output's tail when it fails."""
    with heartbeat(label or cmd[0]):
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.splitlines()[-40:])
        raise BuildError(f"`{' '.join(cmd)}` failed (exit {p.returncode}) in {cwd}:\n{tail}")
    return p.stdout


def go_env() -> dict:
    env = dict(os.environ)
    env.setdefault("GOPROXY", GOPROXY)
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-mod=mod"
    env.setdefault("GOTOOLCHAIN", "auto")
    env["GOWORK"] = "off"  # some modules ship a go.work that would reject -mod=mod
    return env


def proxy_probe(module: str, version: str) -> None:
    """Fail fast, with the reason, when the proxy refuses a module (it answers 403/404 here)."""
    url = f"{os.environ.get('GOPROXY', GOPROXY).split(',')[0]}/{module.lower()}/@v/{version}.info"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace").strip()[:200]
        raise Unavailable(f"the Go module proxy refuses {module}@{version}: HTTP {e.code} {body!r}") from e
    except urllib.error.URLError as e:
        raise BuildError(f"cannot reach the Go module proxy for {module}@{version}: {e.reason}") from e


def go_download(module: str, version: str) -> dict:
    proxy_probe(module, version)
    # -json reports a failure in its output (exit 1), which says whether the source refused it.
    with heartbeat(f"go mod download {module}"):
        p = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], env=go_env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = json.loads(p.stdout)
    except ValueError:
        raise BuildError(f"go mod download {module}@{version} failed (exit {p.returncode}): {p.stderr[-400:]}") from None
    if info.get("Error"):
        if re.search(r"verifying .*sumdb.*: (403|404|410) ", info["Error"]):
            # The checksum database cannot vouch for it here: refused, never built unverified.
            raise Unavailable(f"the checksum database does not answer for {module}@{version}: {info['Error'][-160:]}")
        raise BuildError(f"go mod download {module}@{version}: {info['Error']}")
    return info


def writable_copy(src: str, dst: Path) -> Path:
    """Module cache files are read-only; builds with replace directives need a writable tree."""
    shutil.copytree(src, dst, symlinks=True)
    for p in dst.rglob("*"):
        try:
            p.chmod(p.stat().st_mode | 0o200)
        except OSError:
            pass
    dst.chmod(0o755)
    return dst


EMBED_RE = re.compile(r"^//go:embed\s+(.+)$", re.M)


def fill_missing_embeds(tree: Path, pkg_dirs: list[str]) -> list[str]:
    """Create placeholders for go:embed targets the module zip leaves out (built web UI assets).

    The HTTP APIs the stack uses do not depend on them; only the browser UI of a native build is
    a placeholder page. Returns what was created, so the log says so."""
    made = []
    for rel in pkg_dirs:
        for go in (tree / rel).rglob("*.go"):
            if go.name.endswith("_test.go"):
                continue
            for m in EMBED_RE.finditer(go.read_text(errors="replace")):
                for pat in m.group(1).split():
                    pat = pat.strip('"').removeprefix("all:")
                    if any(ch in pat for ch in "*?["):
                        base = go.parent / pat.split("/")[0]
                        if not list(go.parent.glob(pat)):
                            base.mkdir(parents=True, exist_ok=True)
                            (base / "placeholder.html").write_text("native test build: UI assets not bundled\n")
                            made.append(str(base.relative_to(tree)))
                        continue
                    target = go.parent / pat
                    if not target.exists():
                        target.mkdir(parents=True, exist_ok=True)
                        (target / "index.html").write_text(
                            "<html><body>native test build: UI assets are not in the Go module</body></html>\n")
                        made.append(str(target.relative_to(tree)))
    return made


def version_ldflags(pkg: str, version: str, extra: list[str] = ()) -> str:
    flags = [f"-X {pkg}.Version={version}", f"-X {pkg}.Branch=HEAD", f"-X {pkg}.Revision=module-proxy",
             f"-X {pkg}.BuildUser=install-tools"]
    for e in extra:
        flags += [f"-X {e}.Version={version}", f"-X {e}.Branch=HEAD", f"-X {e}.Revision=module-proxy"]
    return "-s -w " + " ".join(flags)


def go_build_module(tool: Tool, module: str, modver: str, version: str, out: Path, pkgs: dict[str, str],
                    ldflags: str, tags: str = "", prepare: Callable[[Path, dict], None] | None = None,
                    embed_dirs: list[str] = ()) -> None:
    log(f"{tool.name} {version}: downloading {module}@{modver}")
    info = go_download(module, modver)
    with tempfile.TemporaryDirectory(prefix=f"build-{tool.name}-") as tmp:
        tree = writable_copy(info["Dir"], Path(tmp) / "src")
        if prepare:
            prepare(tree, info)
        made = fill_missing_embeds(tree, list(embed_dirs))
        if made:
            log(f"{tool.name}: placeholder UI assets for go:embed targets missing from the module: {', '.join(made)}")
        (out / "bin").mkdir(parents=True, exist_ok=True)
        for binary, pkg in pkgs.items():
            log(f"{tool.name} {version}: go build {pkg} (first build of a version takes minutes)")
            cmd = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "bin" / binary)]
            if tags:
                cmd += ["-tags", tags]
            run(cmd + [pkg], cwd=tree, env=go_env(), label=f"go build {binary}")


# ---------------------------------------------------------------- per tool

def semver_v(v: str) -> str:
    return v if v.startswith("v") else "v" + v


REFUSED_SD = re.compile(r"^discovery/(\w+)/\S+\.go:\d+:\d+: (\S+): reading \S+: 403", re.M)


def build_prometheus(tool: Tool, version: str, out: Path) -> None:
    # Prometheus 3.M.P is published as Go module v0.3MM.P.
    major, minor, patch = semver_v(version)[1:].split(".")
    modver = f"v0.{int(major)}{int(minor):02d}.{patch}"
    v = version.lstrip("v")
    info = go_download("github.com/prometheus/prometheus", modver)
    plugins = sorted(re.findall(r"enable_(\w+)_sd", "".join(
        p.read_text() for p in (Path(info["Dir"]) / "plugins").glob("plugin_*.go"))))
    # Some service-discovery plugins depend on modules the proxy refuses (403). Prometheus' own
    # build tags (remove_all_sd + enable_<name>_sd) leave exactly those out; every other plugin,
    # and everything the shipped config uses, is the release's code. Logged, never silent.
    dropped: dict[str, str] = {}
    for _ in range(len(plugins) + 1):
        tags = "netgo" if not dropped else ",".join(
            ["netgo", "remove_all_sd"] + [f"enable_{p}_sd" for p in plugins if p not in dropped])
        try:
            go_build_module(tool, "github.com/prometheus/prometheus", modver, v, out,
                            {"prometheus": "./cmd/prometheus", "promtool": "./cmd/promtool"},
                            version_ldflags("github.com/prometheus/common/version", v),
                            tags=tags, embed_dirs=["web", "cmd"])
            break
        except BuildError as e:
            refused = {m.group(1): m.group(2) for m in REFUSED_SD.finditer(str(e)) if m.group(1) in plugins}
            if not refused or set(refused) <= set(dropped):
                raise
            for name, mod in refused.items():
                log(f"prometheus: leaving out the {name} service discovery: the proxy refuses {mod}")
            dropped.update(refused)
    if dropped:
        (out / "omitted-sd.txt").write_text("".join(f"{k}\t{v}\n" for k, v in sorted(dropped.items())))


def build_alertmanager(tool: Tool, version: str, out: Path) -> None:
    # >= 0.32 embeds ui/app/dist, which is built by npm and not part of the module zip.
    go_build_module(tool, "github.com/prometheus/alertmanager", semver_v(version), version.lstrip("v"), out,
                    {"alertmanager": "./cmd/alertmanager", "amtool": "./cmd/amtool"},
                    version_ldflags("github.com/prometheus/common/version", version.lstrip("v")),
                    tags="netgo", embed_dirs=["ui", "template", "asset"])


def build_otelcol(tool: Tool, version: str, out: Path) -> None:
    v = version.lstrip("v")
    manifest = ROOT / "otelcol" / "builder-config.yaml"
    text = manifest.read_text()
    pinned = set(re.findall(r"^\s*-\s*gomod:\s*go\.opentelemetry\.io/collector/\S+\s+v(\S+)", text, re.M))
    if pinned != {v}:
        raise BuildError(f"{manifest}: core components pinned at {sorted(pinned)}, but .env OTELCOL_VERSION={v}; "
                         f"update the manifest to v{v}")
    env = go_env()
    with tempfile.TemporaryDirectory(prefix="build-otelcol-") as tmp:
        gobin = Path(tmp) / "gobin"
        log(f"otelcol {v}: installing the OpenTelemetry Collector Builder go.opentelemetry.io/collector/cmd/builder@v{v}")
        proxy_probe("go.opentelemetry.io/collector/cmd/builder", f"v{v}")
        run(["go", "install", f"go.opentelemetry.io/collector/cmd/builder@v{v}"], env={**env, "GOBIN": str(gobin)},
            label="go install builder")
        log(f"otelcol {v}: building the collector from {manifest.relative_to(ROOT)} (takes minutes)")
        build_dir = Path(tmp) / "dist"
        run([str(gobin / "builder"), "--config", str(manifest), "--output-path", str(build_dir)], env=env,
            label="ocb")
        (out / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(build_dir / "otelcol-obs", out / "bin" / "otelcol")
        # The manifest the binary was built from, so a later manifest edit invalidates the cache.
        shutil.copy2(manifest, out / "builder-config.yaml")


def build_blackbox(tool: Tool, version: str, out: Path) -> None:
    # From the module proxy where it serves the release (GitHub's runners); here it refuses
    # prometheus/blackbox_exporter, and Debian's package stands in, only at the pinned release.
    want = version.lstrip("v")
    try:
        go_build_module(tool, "github.com/prometheus/blackbox_exporter", semver_v(version), want, out,
                        {"blackbox_exporter": "."},
                        version_ldflags("github.com/prometheus/common/version", want), tags="netgo")
        return
    except Unavailable as e:
        log(f"blackbox: {e}; using Debian's package instead")
        shutil.rmtree(out, ignore_errors=True)
    src = Path("/usr/bin/prometheus-blackbox-exporter")
    if not src.exists():
        if shutil.which("apt-get") is None:
            raise Unavailable("blackbox_exporter: module proxy refuses it and apt-get is not available")
        log("blackbox: installing Debian's prometheus-blackbox-exporter (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        p = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus-blackbox-exporter"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            run(["apt-get", "update", "-q"], env=env, label="apt-get update")
            run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus-blackbox-exporter"], env=env,
                label="apt-get install")
    got = subprocess.run([str(src), "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    m = re.search(r"version (\d+\.\d+\.\d+)", got)
    if not m or m.group(1) != want:
        raise Unavailable(f"blackbox_exporter: Debian ships {m.group(1) if m else '?'}, pinned is {want}; "
                          "a Debian binary stands in only at the pinned version")
    (out / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, out / "bin" / "blackbox_exporter")


def build_sloth(tool: Tool, version: str, out: Path) -> None:
    proxy_probe("github.com/slok/sloth", semver_v(version))
    # The version is stamped into the header of every rules file sloth generates ("Code generated by Sloth
    # (v0.16.0)"), so the committed rules say which release wrote them.
    go_build_module(tool, "github.com/slok/sloth", semver_v(version), version, out, {"sloth": "./cmd/sloth"},
                    f"-s -w -X github.com/slok/sloth/internal/info.Version={version}")


def build_pint(tool: Tool, version: str, out: Path) -> None:
    proxy_probe("github.com/cloudflare/pint", semver_v(version))
    go_build_module(tool, "github.com/cloudflare/pint", semver_v(version), version, out, {"pint": "./cmd/pint"},
                    f"-s -w -X main.version={version}")


def build_actionlint(tool: Tool, version: str, out: Path) -> None:
    go_build_module(tool, "github.com/rhysd/actionlint", semver_v(version), version, out,
                    {"actionlint": "./cmd/actionlint"},
                    f"-s -w -X github.com/rhysd/actionlint.version={version}")


def build_compose_cli(tool: Tool, version: str, out: Path) -> None:
    # The Compose CLI (standalone `docker-compose`): `config` parses, merges and interpolates compose files
    # exactly as `docker compose up` does, without an engine.
    go_build_module(tool, "github.com/docker/compose/v5", semver_v(version), version, out,
                    {"docker-compose": "./cmd"},
                    f"-s -w -X github.com/docker/compose/v5/internal.Version={version}")


def build_compose_spec(tool: Tool, version: str, out: Path) -> None:
    # The Compose Specification JSON schema, as docker compose itself embeds it (compose-go).
    info = go_download("github.com/compose-spec/compose-go/v2", semver_v(version))
    (out / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(info["Dir"]) / "schema" / "compose-spec.json", out / "bin" / "compose-spec.json")


NPM_PROJECT = ROOT / "tests" / "support" / "lezer_logql"   # package.json + package-lock.json (committed)
NPM_FILES = ("package.json", "package-lock.json")


def build_lezer_logql(tool: Tool, version: str, out: Path) -> None:
    # An npm package (Grafana's LogQL grammar), not a Go build: `npm ci` from the committed lock file, so every
    # machine gets the same tree, integrity-checked; no install scripts run. The tree lives in <version>/bin.
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise Unavailable("node and npm are not on PATH (Debian: apt-get install nodejs npm)")
    pinned = json.loads((NPM_PROJECT / "package.json").read_text())["dependencies"].get("@grafana/lezer-logql")
    if pinned != version:
        raise BuildError(f"{NPM_PROJECT.relative_to(ROOT)}/package.json pins @grafana/lezer-logql {pinned}, but .env "
                         f"LEZER_LOGQL_VERSION={version}; set both to one version and run "
                         f"`npm install --package-lock-only` there")
    (out / "bin").mkdir(parents=True, exist_ok=True)
    for name in NPM_FILES:
        shutil.copy2(NPM_PROJECT / name, out / "bin" / name)
    log(f"{tool.name} {version}: npm ci @grafana/lezer-logql@{version} from the committed package-lock.json")
    print(run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
              cwd=out / "bin", label="npm ci").strip(), flush=True)
    got = json.loads((out / "bin" / tool.binaries[0]).read_text())["version"]
    if got != version:
        raise BuildError(f"npm ci installed @grafana/lezer-logql {got}, expected {version}")


TOOLS: list[Tool] = [
    Tool("prometheus", "PROMETHEUS_VERSION", ["prometheus", "promtool"], build_prometheus),
    Tool("alertmanager", "ALERTMANAGER_VERSION", ["alertmanager", "amtool"], build_alertmanager),
    Tool("otelcol", "OTELCOL_VERSION", ["otelcol"], build_otelcol),
    Tool("blackbox", "BLACKBOX_VERSION", ["blackbox_exporter"], build_blackbox),
    Tool("sloth", "SLOTH_VERSION", ["sloth"], build_sloth, ["version"]),
    Tool("pint", "PINT_VERSION", ["pint"], build_pint, ["version"]),
    Tool("actionlint", "ACTIONLINT_VERSION", ["actionlint"], build_actionlint, ["-version"]),
    Tool("compose", "COMPOSE_CLI_VERSION", ["docker-compose"], build_compose_cli, ["version"]),
    Tool("compose-spec", "COMPOSE_GO_VERSION", ["compose-spec.json"], build_compose_spec, []),
    Tool("lezer-logql", "LEZER_LOGQL_VERSION", ["node_modules/@grafana/lezer-logql/package.json"], build_lezer_logql,
         []),
]
BY_NAME = {t.name: t for t in TOOLS}


def cache_key_ok(tool: Tool, version: str) -> bool:
    d = tool.dest(version)
    if not (d / ".complete").exists():
        return False
    if tool.name == "otelcol":
        built = d / "builder-config.yaml"
        return built.exists() and built.read_text() == (ROOT / "otelcol" / "builder-config.yaml").read_text()
    if tool.name == "lezer-logql":  # a lock file edit (a dependency bumped) invalidates the cache
        return all((d / "bin" / f).exists() and (d / "bin" / f).read_text() == (NPM_PROJECT / f).read_text()
                   for f in NPM_FILES) and (d / "bin" / tool.binaries[0]).exists()
    return all((d / "bin" / b).exists() for b in tool.binaries)


def status_path() -> Path:
    return tools_dir() / "status.json"


def load_status() -> dict:
    try:
        return json.loads(status_path().read_text())
    except (OSError, ValueError):
        return {}


def tool_path(name: str, binary: str | None = None) -> Path | None:
    """Path of an installed binary at the pinned version, or None when it is not installed."""
    tool = BY_NAME[name]
    version = read_versions()[tool.version_key]
    p = tool.bin(version, binary)
    return p if cache_key_ok(tool, version) and p.exists() else None


def unavailable_reason(name: str) -> str:
    st = load_status().get(name, {})
    version = read_versions()[BY_NAME[name].version_key]
    if st.get("version") == version and st.get("state") == "unavailable":
        return st.get("reason", "")
    return f"{name} {version} is not installed: run scripts/install-tools"


def install(tool: Tool, version: str) -> tuple[str, str]:
    if cache_key_ok(tool, version):
        log(f"{tool.name} {version}: cached at {tool.dest(version)}")
        return "ok", "cached"
    dest = tool.dest(version)
    if dest.exists():
        shutil.rmtree(dest)
    start = time.monotonic()
    try:
        tool.build(tool, version, dest)
    except Unavailable as e:
        shutil.rmtree(dest, ignore_errors=True)
        log(f"{tool.name} {version}: UNAVAILABLE here: {e}")
        return "unavailable", str(e)
    except BuildError as e:
        shutil.rmtree(dest, ignore_errors=True)
        log(f"{tool.name} {version}: FAILED: {e}")
        return "failed", str(e)
    (dest / ".complete").write_text(f"{version}\n")
    log(f"{tool.name} {version}: built in {time.monotonic() - start:.0f} s -> {dest}/bin")
    return "ok", "built"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated tool names (default: all)")
    ap.add_argument("--strict", action="store_true", help="also fail when a tool is unavailable from its source")
    ap.add_argument("--list", action="store_true", help="print tool, pinned version and path, then exit")
    args = ap.parse_args(argv)
    versions = read_versions()
    names = args.only.split(",") if args.only else [t.name for t in TOOLS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown tool(s) {unknown}; known: {', '.join(BY_NAME)}")
    if args.list:
        for n in names:
            t = BY_NAME[n]
            v = versions[t.version_key]
            print(f"{n}\t{v}\t{t.dest(v) / 'bin'}\t{'installed' if cache_key_ok(t, v) else 'missing'}")
        return 0
    tools_dir().mkdir(parents=True, exist_ok=True)
    if shutil.which("go") is None:
        log("`go` is not on PATH: install Go >= 1.26 (the builds use the Go module proxy)")
        return 2
    status = load_status()
    t0 = time.monotonic()
    failed = []
    for i, n in enumerate(names, 1):
        t = BY_NAME[n]
        v = versions.get(t.version_key)
        if not v:
            log(f"{n}: {t.version_key} missing from .env")
            failed.append(n)
            continue
        log(f"({i}/{len(names)}) {n} {v}")
        state, detail = install(t, v)
        status[n] = {"version": v, "state": state, "reason": detail}
        status_path().write_text(json.dumps(status, indent=2))
        if state == "failed" or (state == "unavailable" and args.strict):
            failed.append(n)
    log(f"done in {time.monotonic() - t0:.0f} s; tools dir {tools_dir()}")
    for n in names:
        st = status.get(n, {})
        log(f"  {n:13s} {st.get('state', '?'):12s} {st.get('reason', '')[:160]}")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
