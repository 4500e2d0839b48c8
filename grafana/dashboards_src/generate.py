"""Generate every dashboard into grafana/dashboards/<Folder>/<uid>.json (the file provider reads them with
foldersFromFilesStructure), and the per-dashboard question list in docs/dashboards.md.

    scripts/generate-dashboards            write the files
    scripts/generate-dashboards --check    exit 1 if a committed file differs from what the code generates
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import boards_apps  # noqa: E402
import boards_logs  # noqa: E402
import boards_overview  # noqa: E402
import boards_platforms  # noqa: E402
import boards_stack  # noqa: E402
from lib import Board  # noqa: E402
from rules import RULES_DIR, Rules  # noqa: E402

ROOT = HERE.parents[1]
OUT = ROOT / "grafana" / "dashboards"
DOC = ROOT / "docs" / "dashboards.md"

DOC_HEAD = """# Dashboards

Generated from `grafana/dashboards_src/` (grafana-foundation-sdk, pinned in its `requirements.txt`) by
`scripts/generate-dashboards`; do not edit the JSON in `grafana/dashboards/` by hand: CI
(`tests/dashboards`) fails when it differs from what the code generates. Thresholds are read from the alert
rules in `prometheus/rules/` (and budgets, SLO objectives) when the JSON is generated, so a panel turns
orange or red exactly where its alert fires.

Every dashboard has datasource variables (`datasource` for Prometheus, plus `logs`/`traces` where it shows
logs or traces), filters by `environment` and `service` (or the platform's own project/repo labels), links
to the runbooks, and reads the golden-signal recording rules where they exist. Open Grafana at
http://127.0.0.1:3000; the alerts link here by uid.

One line per dashboard, with the questions it answers:

"""

DOC_TAIL = """
## Platform logs

Platform logs (`obs-logs`, `grafana/dashboards_src/boards_logs.py`) reads Loki only, by the index labels every
platform and container record carries (docs/logging.md): `platform` (vercel, railway, supabase, compose),
`project`, `service_name`, `source` (Vercel build/lambda/edge/..., Railway deploy/build, Supabase
postgres/auth/..., compose stdout/stderr) and `level` (debug, info, warning, error, critical, unknown). Its
variables are Loki `label_values()` queries, chained platform -> project -> service. Every selector keeps
`platform=~".+"` (Loki refuses a selector whose every matcher matches the All value `.*`), which also leaves the
apps' OTLP logs (no platform label) to the app dashboards. Rows: log volume by platform and level, error ratio
by project and source, errors by platform and service, the lines themselves; then the stack's containers
(`platform="compose"`): errors and volume by compose service, and their lines with `| json` (our components'
fields; one named like a label is `<name>_extracted`, e.g. `level_extracted`). A line's trace id (the OTLP
record's, or `trace_id` extracted from a container's JSON) opens the trace in Tempo through the Loki
datasource's TraceID derived field. Every dashboard LogQL query is parsed by Grafana's own grammar
(`@grafana/lezer-logql`, `tests/dashboards/test_logql.py`) and runs through Grafana in the Docker tier.

## Deploy markers

System Health, API Performance, SLOs and Error Budgets, Deployment Health, Railway, Vercel and GitHub
Actions carry the same three annotations (`grafana/dashboards_src/markers.py`), each one a switch at the
top of the dashboard:

| annotation | colour | what it marks |
| --- | --- | --- |
| Deployments succeeded | green | one marker per finished deployment that succeeded: Railway `SUCCESS`, Vercel `READY`, a GitHub deploy workflow (name containing deploy or release) concluding `success` |
| Deployments failed | red | one marker per failed one: Railway `FAILED` or `CRASHED`, Vercel `ERROR`, a deploy workflow concluding `failure`, `timed_out` or `startup_failure` |
| Deploy windows | blue | a band while DeploymentInProgress fires: a Railway or Vercel build, and 10 minutes after it settles (Alertmanager holds the service's medium and low alerts meanwhile) |

A marker's title is `Deployed <service> (<environment>)` or `Deploy <status>: <service> (<environment>)`,
its text says where it comes from (Railway project, Vercel project, GitHub workflow and branch), its tags
are the platform, environment and status. Service is the Railway service, the Vercel project or the GitHub
repository (the `service` the alerts set); environment is the Railway environment, the Vercel target, or
for GitHub `production` when the run was on `main` or `master`, else the bridge's branch label (the names in
`GITHUB_BRANCHES`, every other branch `other`): the runs API names no deployment environment. Cancelled,
skipped and removed deployments get no marker.

The markers read `obs:deployment_finished:timestamp_seconds` (`prometheus/rules/deploy-markers.yml`),
whose value is when the latest deployment of that platform, service, environment and status finished, with
Grafana's *series value as timestamp*: equal values over the query's steps are one marker, the next
deployment is a new value, hence a new marker at its own time (never a band per scrape step). The time is
Vercel's `ready` where the API gives it, else the bridge poll that first saw the deployment finished (at
most one poll interval late, 60 s by default). GitHub's bridge exports counters only: a run's time is the
first 15 s step at which Prometheus sees it counted (15 to 30 s after the bridge counted it), and deploy
runs of one workflow, branch and conclusion less than a minute apart are one marker, as are deployments of
one service, environment and status counted in the same poll. Markers closer than the query's step merge
into one short region: the step is 15 s, and Grafana raises it for long ranges (the range divided by the
panel width). Nothing is written to Grafana's API.

Filters: the dashboard's service variable (`service`, or the Vercel `project`, or the GitHub `repo`) filters
every platform's markers; its platform variables (Railway project and environment, Vercel target, GitHub
workflow) filter that platform's. On All a filter matches every marker. App dashboards filter by service
only: app environments (`prod`, `beta`) are not the platforms' environment names.

## Regenerate and test

    pip install -r grafana/dashboards_src/requirements.txt   # scripts/test does this in .venv
    scripts/generate-dashboards            # writes grafana/dashboards/<Folder>/<uid>.json and this file
    scripts/generate-dashboards --check    # what CI runs (tests/dashboards/test_generator.py)

`tests/dashboards/`: the committed JSON equals the generator's output; thresholds trace back to the rule
files (and editing a copy of the rules changes the panels); a lint of every dashboard (datasource variables
on every panel and query, title, description and unit, `$__rate_interval` in rates, counters only inside
`rate()`/`increase()`, every variable defined, every PromQL query parsed by the pinned promtool, runbook and
dashboard links resolve, the deploy-marker set on the seven dashboards above); and every PromQL and LogQL
panel query run against the native stack (real Prometheus, Loki, collector, Alertmanager with the shipped
configs) fed by the demo app, its load generator and the four bridges on the API simulator; every annotation
query runs too, and the deploy markers must show the simulated deployments of every platform, success and
failure, at their times and filtered by the variables (`test_markers_live.py`). A failure names the
dashboard and the panel. The few queries that are empty on healthy demo data are listed with their reason in
`tests/dashboards/test_queries_live.py` (`ALLOWED_EMPTY`). TraceQL panels skip: Tempo has no native
binary here.

Grafana itself does not run in the tests: it has no Debian package, no PyPI/npm server build, and the Go
module proxy refuses `github.com/grafana/grafana` (HTTP 403), so its provisioning is checked against the
documented fields (`tests/static/test_grafana_provisioning.py`) and the dashboards through the SDK's
schema (grafana-foundation-sdk builds schema version 41 JSON).
"""


def boards(rules_dir: Path = RULES_DIR) -> list[Board]:
    r = Rules(rules_dir)
    out = [b for mod in (boards_overview, boards_apps, boards_platforms, boards_stack, boards_logs)
           for b in mod.all_boards(r)]
    uids = [b.uid for b in out]
    assert len(uids) == len(set(uids)), f"duplicate uid in {uids}"
    return out


def render(rules_dir: Path = RULES_DIR) -> dict[Path, str]:
    """Every generated file: path -> exact content."""
    files: dict[Path, str] = {}
    bs = boards(rules_dir)
    for b in bs:
        files[OUT / b.folder / f"{b.uid}.json"] = json.dumps(b.to_json(), indent=2, sort_keys=True) + "\n"
    from lib import questions_md
    files[DOC] = DOC_HEAD + questions_md(bs) + DOC_TAIL
    return files


def stale(files: dict[Path, str]) -> list[str]:
    problems = []
    for path, content in files.items():
        if not path.exists():
            problems.append(f"missing: {path.relative_to(ROOT)}")
        elif path.read_text() != content:
            problems.append(f"differs: {path.relative_to(ROOT)}")
    extra = {p for p in OUT.rglob("*.json")} - set(files)
    problems += [f"not generated (delete it or add it to the generator): {p.relative_to(ROOT)}" for p in sorted(extra)]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the committed files are not what the code generates")
    ap.add_argument("--rules", type=Path, default=RULES_DIR, help="rule files to read thresholds from "
                    "(default prometheus/rules)")
    args = ap.parse_args(argv)
    files = render(args.rules)
    if args.check:
        problems = stale(files)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("run scripts/generate-dashboards and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files up to date")
        return 0
    for p in OUT.rglob("*.json"):
        if p not in files:
            p.unlink()
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
