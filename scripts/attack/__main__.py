"""Run every attack module in scripts/attack/ against our own services on loopback and report what held.

Each module (`python -m scripts.attack.<name>`) starts its component on 127.0.0.1, runs bounded attacks,
prints one JSON document and exits 1 if an attack did not hold (scripts/attack/README.md). This runner
runs them one after the other, prints a table, and exits 1 if any attack did not hold or a module failed.

Usage: python -m scripts.attack [--only NAME[,NAME]] [--json FILE] [--timeout SECONDS]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def modules(folder: Path = HERE) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__" and not p.stem.startswith("_"))


def run_module(name: str, timeout: float, package: str = "scripts.attack", path: Path = ROOT) -> dict:
    """Run one attack module and return its report (with "error" when it broke its contract)."""
    start = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))}
    try:
        p = subprocess.run([sys.executable, "-m", f"{package}.{name}"], cwd=path, env=env, text=True,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"component": name, "error": f"did not finish within {timeout:.0f} s", "results": []}
    took = time.monotonic() - start
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        tail = (p.stderr or p.stdout).strip().splitlines()[-15:]
        return {"component": name, "error": f"exit {p.returncode}, no JSON report:\n" + "\n".join(tail), "results": []}
    doc["seconds"] = round(took, 1)
    doc["exit"] = p.returncode
    if p.returncode not in (0, 1) or (p.returncode == 1) != any(not r.get("held") for r in doc.get("results", [])):
        doc["error"] = f"exit code {p.returncode} disagrees with its report"
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated module names (default: all)")
    ap.add_argument("--json", help="also write the full report to this file")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per module (default 180)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        ap.error(f"unknown module(s) {unknown}; known: {', '.join(modules())}")
    reports, bad, held = [], 0, 0
    for name in names:
        print(f"[attack] {name}: running (at most {args.timeout:.0f} s)", file=sys.stderr, flush=True)
        doc = run_module(name, args.timeout)
        reports.append(doc)
        if doc.get("error"):
            bad += 1
            print(f"[attack] {name}: ERROR {doc['error']}", file=sys.stderr)
        for r in doc.get("results", []):
            rss = r.get("peak_rss_mb")
            mark = "held" if r.get("held") else "BROKEN"
            bad += 0 if r.get("held") else 1
            held += 1 if r.get("held") else 0
            print(f"{mark:7s} {name:11s} {r.get('attack', '?')[:48]:48s} "
                  f"{'' if rss is None else f'{rss:7.1f} MB'}  {r.get('tried', '')[:70]}")
            if not r.get("held"):
                print(f"        detail: {r.get('detail', '')[:300]}")
    print(f"attacks: {held} held, {bad} broken or failed, {len(names)} modules")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
