"""Platform logs (issue 16): the Vercel, Railway and Supabase logs and the stack's own containers in Loki, by
the index labels every platform record carries (docs/logging.md, "Logs in Loki"): platform, project,
service_name, source, level. Record ids, paths and messages are structured metadata or the line, never labels;
a record's trace id opens its trace in Tempo through the Loki datasource's TraceID derived field
(grafana/provisioning/datasources/datasources.yml)."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from lib import Board, L, PanelSpec as S, ds, explore_url
from rules import Rules

# Loki refuses a selector whose every matcher matches "" (the All value `.*`): `platform=~".+"` keeps each
# one valid, and leaves out apps' OTLP logs (they carry no platform label; the app dashboards show those).
SEL = ('platform=~".+", platform=~"$platform", project=~"$project", service_name=~"$service_name", '
       'level=~"$level"')
COMPOSE = 'platform="compose", service_name=~"$service_name", level=~"$level"'
ERRORS = 'level=~"error|critical"'
# Per Grafana step ($__auto: the panel's interval for Loki), so a bar is a count of lines in that step.
WIN = "[$__auto]"
TRACE_NOTE = ("Open a line: a trace id (the record's own, or `trace_id` in a container's JSON line) links to "
              "the trace in Tempo (TraceID derived field).")


def loki_var(b: Board, name: str, label: str, selector: str, description: str) -> None:
    """A Loki label-values variable (Grafana's Loki variable query `label_values(<selector>, <label>)`), All =
    `.*`, chained on the variables before it through `selector`."""
    q = f"label_values({selector}, {name})"
    b.variable_queries[name] = q
    b.variables.append(
        db.QueryVariable(name).label(label).description(description).datasource(ds("loki")).query(q)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC).multi(True)
        .include_all(True).all_value(".*").current(dm.VariableOption(selected=True, text="All", value="$__all")))


def _ratio(sel: str, by: str) -> str:
    """Error lines / all lines per group over the step; a group with lines but no errors shows 0, not a gap."""
    total = f"sum by ({by}) (count_over_time({{{sel}}}{WIN}))"
    errors = f"sum by ({by}) (count_over_time({{{sel}, {ERRORS}}}{WIN}))"
    return f"({errors} / {total}) or ({total} * 0)"


def platform_logs(r: Rules) -> Board:
    b = Board(r, "obs-logs", "Platform logs", "Platforms",
              "Logs of Vercel (log drain), Railway (deploy logs from its API), Supabase (log drain) and the stack's "
              "own containers (Docker's fluentd driver), all in Loki by platform, project, service, source and level.",
              ["How many log lines, and how many errors, does each platform, project and source write?",
               "Which of the stack's containers log errors, and what do they say?",
               "What happened around this error: the lines before and after it, and its trace?"],
              ["obs-stack", "logs", "platforms"], datasources=("prometheus", "loki"))
    loki_var(b, "platform", "Platform", '{platform=~".+"}',
             "Where the logs come from: vercel, railway, supabase or compose (the stack's containers).")
    loki_var(b, "project", "Project", '{platform=~".+", platform=~"$platform"}',
             "The Vercel or Railway project, the Supabase project, or the compose project.")
    loki_var(b, "service_name", "Service", '{platform=~".+", platform=~"$platform", project=~"$project"}',
             "The Vercel project, Railway service, Supabase log source service or compose service.")
    loki_var(b, "level", "Level", '{platform=~".+", platform=~"$platform"}',
             "Normalised level: debug, info, warning, error, critical or unknown.")
    b.link("Log labels and fields (docs/logging.md)",
           "https://github.com/obs-stack/obs-stack/blob/main/docs/logging.md")

    b.row("All platforms")
    b.add(
        S("timeseries", "Log volume by platform and level", "Log lines per step by platform and level (stacked): a "
          "step in one colour is a burst of that level.", "short",
          [L(f"sum by (platform, level) (count_over_time({{{SEL}}}{WIN}))", "{{platform}} {{level}}")],
          stack=True, bars=True, w=12),
        S("timeseries", "Error ratio by project and source", "Share of error and critical lines among all lines "
          "of each project and source (Vercel build/lambda/edge..., Railway deploy/build, Supabase "
          "postgres/auth/..., compose stdout/stderr); 0 where a source logs without errors.", "percentunit",
          [L(_ratio(SEL, "project, source"), "{{project}} {{source}}")], minv=0, maxv=1, w=12),
        S("timeseries", "Errors by platform and service", "Error and critical lines per step by platform and "
          "service.", "short",
          [L(f"sum by (platform, service_name) (count_over_time({{{SEL}, {ERRORS}}}{WIN})) "
             f"or sum by (platform, service_name) (count_over_time({{{SEL}}}{WIN})) * 0",
             "{{platform}} {{service_name}}")], w=24, h=7),
        S("logs", "Logs", "The selected platforms' lines, newest first, with their labels and structured "
          "metadata (request ids, paths, status codes). " + TRACE_NOTE, None, [L(f"{{{SEL}}}")],
          links=[("Open in Explore", explore_url("loki", f"{{{SEL}}}"))], w=24, h=12),
    )

    b.row("Stack containers (platform=compose)")
    b.add(
        S("timeseries", "Container errors by service", "Error and critical lines per step of each compose "
          "service (level from the line's JSON `level`, else the stream); 0 while a service logs no errors.",
          "short",
          [L(f"sum by (service_name) (count_over_time({{{COMPOSE}, {ERRORS}}}{WIN})) "
             f"or sum by (service_name) (count_over_time({{{COMPOSE}}}{WIN})) * 0", "{{service_name}}")], w=12),
        S("timeseries", "Container log volume by service and stream", "Lines per step of each compose service "
          "on stdout and stderr: a silent service has stopped logging (or stopped).", "short",
          [L(f"sum by (service_name, source) (count_over_time({{{COMPOSE}}}{WIN}))",
             "{{service_name}} {{source}}")], w=12),
        S("logs", "Container logs", "The containers' lines; our components' JSON fields (docs/logging.md) are "
          "extracted by `| json` (a field named like a label is `<name>_extracted`, e.g. level_extracted). "
          + TRACE_NOTE, None, [L(f"{{{COMPOSE}}} | json")],
          links=[("Open in Explore", explore_url("loki", f"{{{COMPOSE}}} | json"))], w=24, h=12),
    )
    return b


def all_boards(r: Rules) -> list[Board]:
    return [platform_logs(r)]
