"""What is inside each image the stack runs: the upstream facts (docs/image-facts.yml) plus what our own
Dockerfiles add (COPY targets, pip console scripts), and a checker that says whether a command can run
there. Used by tests/static/test_images.py; `problems_*` return text so a test can show every finding."""
from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.harness import compose

ROOT = compose.ROOT
FACTS_FILE = ROOT / "docs" / "image-facts.yml"
# argv[0] names that only interpret the next argument: the script they run must be in the image too.
INTERPRETERS = {"sh", "bash", "python", "python3"}


@dataclass(frozen=True)
class Facts:
    name: str
    version_key: str
    written_for: str
    path: tuple[str, ...]
    programs: frozenset[str]


@dataclass
class Image:
    """An image as a container sees it: upstream facts plus files our Dockerfile (or compose) adds."""
    label: str
    facts: Facts
    files: set[str] = field(default_factory=set)      # absolute paths added by COPY or bind mounts
    scripts: set[str] = field(default_factory=set)    # console scripts installed by pip (on PATH)

    def has(self, prog: str) -> bool:
        if prog.startswith("/"):
            return prog in self.facts.programs or prog in self.files
        return prog in self.facts.programs or prog in self.scripts

    def check_argv(self, argv: list[str], what: str) -> list[str]:
        """Problems with running argv here: argv[0] and, for a shell or interpreter, the script it runs."""
        if not argv:
            return [f"{what}: empty command"]
        out = []
        if not self.has(argv[0]):
            out.append(f"{what}: {argv[0]!r} is not guaranteed in {self.label} (docs/image-facts.yml lists "
                       f"{sorted(self.facts.programs)}; our Dockerfile adds {sorted(self.files | self.scripts) or 'nothing'})")
            return out
        rest = argv[1:]
        if Path(argv[0]).name == "busybox" and rest:
            rest = rest[1:]  # busybox APPLET ...: the applet is the interpreter
        interp = Path(argv[0]).name in INTERPRETERS or (Path(argv[0]).name == "busybox" and argv[1:2] == ["sh"])
        if interp and rest and rest[0].startswith("/") and not self.has(rest[0]):
            out.append(f"{what}: runs the script {rest[0]!r}, which is neither copied into nor mounted in {self.label}")
        return out


def load_facts() -> dict[str, Facts]:
    doc = yaml.safe_load(FACTS_FILE.read_text())
    return {name: Facts(name, e["version_key"], str(e["written_for"]), tuple(e.get("path") or ()),
                        frozenset(e["programs"])) for name, e in doc["images"].items()}


def image_name(ref: str) -> str:
    """`prom/prometheus:${V}` -> `prom/prometheus` (a registry port is not a tag)."""
    last = ref.rsplit("/", 1)[-1]
    return ref.rsplit(":", 1)[0] if ":" in last else ref


# ------------------------------------------------------------------ Dockerfiles

def instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ins, _, rest = line.partition(" ")
            out.append((ins.upper(), rest.strip()))
    return out


def exec_form(arg: str) -> list[str] | None:
    """The JSON (exec) form of ENTRYPOINT/CMD/RUN, or None for the shell form."""
    try:
        v = json.loads(arg)
    except ValueError:
        return None
    return v if isinstance(v, list) else None


def _copy_targets(context: Path, srcs: list[str], dest: str) -> set[str]:
    """Files a COPY puts into the image (directories expanded from the build context)."""
    out = set()
    many = len(srcs) > 1 or dest.endswith("/")
    for src in srcs:
        p = context / src
        if p.is_dir():
            out |= {f"{dest.rstrip('/')}/{f.relative_to(p)}" for f in p.rglob("*") if f.is_file()}
        else:
            out.add(f"{dest.rstrip('/')}/{Path(src).name}" if many else dest)
    return out


def _console_scripts(context: Path, copied_srcs: list[str]) -> set[str]:
    out = set()
    for src in copied_srcs:
        p = context / src
        for pp in ([p] if p.name == "pyproject.toml" else list(p.glob("pyproject.toml")) if p.is_dir() else []):
            out |= set(tomllib.loads(pp.read_text()).get("project", {}).get("scripts", {}))
    return out


def dockerfile_image(dockerfile: Path, context: Path, facts: dict[str, Facts], text: str | None = None) -> Image:
    """The final stage of a Dockerfile: its upstream base's facts plus what the stage copies in."""
    text = dockerfile.read_text() if text is None else text
    args: dict[str, str] = {}
    stages: list[dict] = []
    for ins, rest in instructions(text):
        if ins == "ARG" and "=" in rest and not stages:
            k, v = rest.split("=", 1)
            args[k] = v
        elif ins == "FROM":
            ref = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
            stages.append({"base": image_name(ref), "copies": [], "srcs": [], "pip": False})
        elif ins == "COPY" and stages:
            parts = [p for p in shlex.split(rest) if not p.startswith("--chown") and not p.startswith("--chmod")]
            from_stage = next((p.split("=", 1)[1] for p in parts if p.startswith("--from=")), None)
            parts = [p for p in parts if not p.startswith("--")]
            srcs, dest = parts[:-1], parts[-1]
            if from_stage:
                stages[-1]["copies"] += [dest if not dest.endswith("/") else dest + Path(s).name for s in srcs]
            else:
                stages[-1]["copies"] += sorted(_copy_targets(context, srcs, dest))
                stages[-1]["srcs"] += srcs
        elif ins == "RUN" and stages and "pip install" in rest:
            stages[-1]["pip"] = True
    final = stages[-1]
    if final["base"] not in facts:
        raise KeyError(f"{dockerfile}: FROM {final['base']} has no entry in docs/image-facts.yml")
    scripts = _console_scripts(context, final["srcs"]) if final["pip"] else set()
    return Image(f"{final['base']} + {dockerfile.relative_to(ROOT)}", facts[final["base"]], set(final["copies"]), scripts)


def dockerfile_healthcheck(text: str) -> list[str] | None:
    for ins, rest in instructions(text):
        if ins == "HEALTHCHECK" and " CMD " in f" {rest} ":
            return exec_form(rest.split("CMD", 1)[1].strip())
    return None


# ------------------------------------------------------------------ compose

def service_image(name: str, raw: dict, facts: dict[str, Facts]) -> Image:
    """The image compose runs for a service, with the service's bind mounts added as files."""
    services = raw["services"]
    s = services[name]
    builder = s if "build" in s else next((o for o in services.values()
                                            if "build" in o and o.get("image") == s.get("image")), None)
    if builder:
        b = builder["build"]
        ctx = ROOT / (b["context"] if isinstance(b, dict) else b)
        img = dockerfile_image(ctx / (b.get("dockerfile", "Dockerfile") if isinstance(b, dict) else "Dockerfile"),
                               ctx, facts)
    else:
        base = image_name(s["image"])
        if base not in facts:
            raise KeyError(f"{name}: image {base} has no entry in docs/image-facts.yml")
        img = Image(base, facts[base])
    for v in s.get("volumes", []):
        src, tgt = v.split(":")[:2]
        if src.startswith((".", "/")):
            p = (ROOT / src).resolve()
            img.files |= ({f"{tgt}/{f.relative_to(p)}" for f in p.rglob("*") if f.is_file()} if p.is_dir() else {tgt})
    img.label = f"{img.label} (service {name})"
    return img


def compose_problems(raw: dict, facts: dict[str, Facts]) -> list[str]:
    """Every compose healthcheck and entrypoint that may run a program the image does not have."""
    out = []
    for name, s in raw["services"].items():
        img = service_image(name, raw, facts)
        test = (s.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            out += img.check_argv(test[1:], f"{name} healthcheck")
        elif test is not None:
            shell = isinstance(test, str) or test[0] == "CMD-SHELL"
            if shell and not img.has("/bin/sh"):
                out.append(f"{name} healthcheck: shell form needs /bin/sh, which {img.label} lacks")
            elif shell:
                # each command of the shell line runs in the image too
                line = test if isinstance(test, str) else test[1]
                for part in re.split(r"&&|\|\||;|\|", line):
                    if part.strip():
                        out += img.check_argv(shlex.split(part), f"{name} healthcheck")
            else:
                out.append(f"{name} healthcheck: use the [\"CMD\", ...] form, got {test[0]!r}")
        if "entrypoint" in s:
            ep = s["entrypoint"] if isinstance(s["entrypoint"], list) else shlex.split(s["entrypoint"])
            out += img.check_argv(ep, f"{name} entrypoint")
    return out


# ------------------------------------------------------------------ .dockerignore

def dockerignore_for(context: Path, dockerfile: Path) -> Path | None:
    """BuildKit's choice: <Dockerfile>.dockerignore next to the Dockerfile wins over <context>/.dockerignore."""
    specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if specific.exists():
        return specific
    root = context / ".dockerignore"
    return root if root.exists() else None


def _glob_rx(pat: str) -> str:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pat.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pat[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pat[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pat[i]), i + 1
    return out


def ignored(patterns: list[str], path: str) -> bool:
    """Whether the Docker build context leaves `path` out (last matching rule wins; a rule matching a
    parent directory covers everything below it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for raw in patterns:
        pat = raw.strip()
        if not pat or pat.startswith("#"):
            continue
        neg = pat.startswith("!")
        rx = _glob_rx(pat.lstrip("!").strip().strip("/"))
        if any(re.fullmatch(rx, p) for p in prefixes):
            result = not neg
    return result
