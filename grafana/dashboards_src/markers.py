"""Deploy markers: the one set of deployment annotations on every dashboard where a deployment explains
what the graphs show (docs/dashboards.md, "Deploy markers").

- Deployments succeeded (green) and Deployments failed (red): one marker per finished deployment on Railway,
  Vercel and GitHub Actions (deploy workflows), read from obs:deployment_finished:timestamp_seconds
  (prometheus/rules/deploy-markers.yml). Its value is the finish time, so the annotations use Grafana's
  "series value as timestamp": the value repeats over the query's steps and Grafana merges equal times
  into one marker; the next deployment is a new value, hence a new marker. A band per scrape step (what
  `increase(...) > 0` draws) cannot happen, and a marker sits at the deployment's time, not a step's.
- Deploy windows (blue): the DeploymentInProgress alert while it fires (build, then 10 minutes after it
  settles, the window in which Alertmanager holds the service's medium and low alerts).

Filters: `service` names the board's variable that selects a service; it matches every platform's
`service` label (Railway service, Vercel project, GitHub repository: the `service` the alerts use). A
board's platform-specific variables (Railway project and environment, Vercel target, GitHub workflow)
filter that platform only. A variable on All is `.*`, which matches every marker.
"""
from __future__ import annotations

from lib import Board

FAMILY = "obs:deployment_finished:timestamp_seconds"
PLATFORMS = ("railway", "vercel", "github")
# The scrape and rule interval: a finish-time series changes at most once per 15 s, so this step sees every
# value; Grafana raises the step for long ranges (range / panel width), where close deployments merge.
STEP = "15s"
SUCCEEDED, FAILED, WINDOWS = "Deployments succeeded", "Deployments failed", "Deploy windows"
COLOURS = {SUCCEEDED: "green", FAILED: "red", WINDOWS: "blue"}
TITLES = {SUCCEEDED: "Deployed {{service}} ({{environment}})",
          FAILED: "Deploy {{status}}: {{service}} ({{environment}})"}
TEXT = "{{detail}}"
TAGS = "platform,environment,status"


def _matchers(labels: dict[str, str]) -> str:
    return ", ".join(f'{k}=~"${v}"' for k, v in sorted(labels.items()))


def marker_expr(outcome: str, service: str, only: dict[str, dict[str, str]]) -> str:
    """Milliseconds (what Grafana's "series value as timestamp" reads) of the finished deployments with this
    outcome, filtered as the module docstring says."""
    per = {p: {"service": service, **only.get(p, {})} for p in PLATFORMS}
    if all(per[p] == per[PLATFORMS[0]] for p in PLATFORMS):
        sel = f'{FAMILY}{{outcome="{outcome}", {_matchers(per[PLATFORMS[0]])}}}'
    else:
        sel = " or ".join(f'{FAMILY}{{outcome="{outcome}", platform="{p}", {_matchers(per[p])}}}' for p in PLATFORMS)
    return f"1000 * ({sel})"


def deploy_markers(b: Board, service: str, **only: dict[str, str]) -> Board:
    """Add the marker set to a board. only: platform -> {label: variable}, e.g. railway={"environment":
    "environment"} (a `service` entry replaces the shared one for that platform)."""
    unknown = set(only) - set(PLATFORMS)
    assert not unknown, f"unknown platforms {unknown}"
    for name, outcome in ((SUCCEEDED, "success"), (FAILED, "failure")):
        b.annotate(name, marker_expr(outcome, service, only), COLOURS[name], TITLES[name], text=TEXT, tags=TAGS,
                   value_is_time=True, step=STEP)
    b.annotate(WINDOWS, f'ALERTS{{alertname="DeploymentInProgress", alertstate="firing", service=~"${service}"}}',
               COLOURS[WINDOWS], "{{service}} deploying",
               text="DeploymentInProgress: medium and low alerts of the service are held", step=STEP)
    return b
