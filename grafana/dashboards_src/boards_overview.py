"""Overview dashboards: System Health and SLOs and Error Budgets (docs/dashboards.md), on the applications'
recording rules and helpers (boards_apps.py)."""
from __future__ import annotations

from boards_apps import LOKI_SEL, SE, app_vars, db_error_ratio, slo_step
from lib import (UP_MAP, Board, P, PanelSpec as S, dash_url, explore_url, runbook_links, th_alert,
                 th_floor, th_static)
from markers import deploy_markers
from rules import Rules


def system_health(r: Rules) -> Board:
    b = Board(r, "obs-system", "System Health", "Overview",
              "Real-time overview for the on-call engineer: is the API up, are errors and latency within their "
              "alert thresholds, are resources and the database healthy, what is firing.",
              ["Is the API up and answering within its error and latency thresholds right now?",
               "Are Railway resources or the database pool close to saturation?",
               "Which alerts are firing or pending?"],
              ["obs-stack", "overview"], refresh="30s")
    app_vars(b)
    deploy_markers(b, "service")
    b.link("API Performance", dash_url("obs-api")).link("SLOs and Error Budgets", dash_url("obs-slo"))
    b.link("Logs in Explore", explore_url("loki", LOKI_SEL))
    err5 = r.steps("APIHighErrorRate", "service_environment:http_requests:error_ratio_rate5m")
    err1 = r.steps("APIHighErrorRate", "service_environment:http_requests:error_ratio_rate1m")
    p95 = r.steps("APIHighLatency", "service_environment:http_request_duration_seconds:p95_rate5m")
    p99 = r.steps("APIHighLatency", "service_environment:http_request_duration_seconds:p99_rate5m")
    down = r.steps("APIDown")
    avail = slo_step(r, "api-availability-prod", "SLOAvailabilityBudgetBurn")
    b.row("Status now")
    b.add(
        S("stat", "API up", "Whether Prometheus can scrape each app (`up`); APIDown pages after 1 minute DOWN.",
          "none", [P(f'min by (service) (up{{service!="", {SE}}})', "{{service}}", instant=True)],
          th_floor(1, down[0]), runbook_links(down), w=6, h=5, mappings=UP_MAP, color_background=True),
        S("stat", "5xx error ratio (5m)", "Share of requests answered with a 5xx over 5 minutes "
          "(recording rule). Colours are the APIHighErrorRate rungs: low 0.1%, medium 1%, high 5%.",
          "percentunit", [P(f"service_environment:http_requests:error_ratio_rate5m{{{SE}}}",
                            "{{service}} ({{environment}})", instant=True)],
          th_alert(err5), runbook_links(err5), w=6, h=5),
        S("stat", "p95 latency (5m)", "95th percentile request duration over 5 minutes (recording rule). "
          "Colours are the APIHighLatency p95 rungs (medium 500 ms, high 2 s).",
          "s", [P(f"service_environment:http_request_duration_seconds:p95_rate5m{{{SE}}}",
                  "{{service}} ({{environment}})", instant=True)], th_alert(p95), runbook_links(p95), w=6, h=5),
        S("stat", "Availability (time range)", "Share of requests without a 5xx over the dashboard's time "
          "range. Red below the prod availability SLO objective.", "percentunit",
          [P(f'1 - ((sum by (service) (increase(http_requests_total{{{SE}, status_code=~"5.."}}[$__range])) '
             f"or sum by (service) (increase(http_requests_total{{{SE}}}[$__range])) * 0) "
             f"/ sum by (service) (increase(http_requests_total{{{SE}}}[$__range])))", "{{service}}", instant=True)],
          th_floor(avail.value, avail), runbook_links([avail]), w=6, h=5),
    )
    b.row("Traffic and errors")
    b.add(
        S("timeseries", "Request rate", "Requests per second per service (recording rule, 1m rate).", "reqps",
          [P(f"service_environment:http_requests:rate1m{{{SE}}}", "{{service}} ({{environment}})")]),
        S("timeseries", "5xx error ratio", "5xx share over 1 and 5 minutes; dashed lines are the "
          "APIHighErrorRate thresholds (critical 50% on the 1m ratio, the others on 5m).", "percentunit",
          [P(f"service_environment:http_requests:error_ratio_rate1m{{{SE}}}", "{{service}} 1m"),
           P(f"service_environment:http_requests:error_ratio_rate5m{{{SE}}}", "{{service}} 5m")],
          th_alert(err5 + err1), runbook_links(err5)),
    )
    b.row("Latency")
    b.add(
        S("timeseries", "Latency percentiles", "p50, p95 and p99 request duration (recording rules). Dashed "
          "lines: the APIHighLatency p95 thresholds.", "s",
          [P(f"service_environment:http_request_duration_seconds:p50_rate5m{{{SE}}}", "{{service}} p50"),
           P(f"service_environment:http_request_duration_seconds:p95_rate5m{{{SE}}}", "{{service}} p95"),
           P(f"service_environment:http_request_duration_seconds:p99_rate5m{{{SE}}}", "{{service}} p99")],
          th_alert(p95), runbook_links(p95 + p99), w=24),
    )
    mem = r.steps("RailwayMemorySaturated")
    cpu = r.steps("RailwayCPUSaturated")
    pool = r.steps("DatabasePoolSaturated", "service_environment:database_connections:utilisation")
    slow = r.steps("DatabaseSlowQueries", "service_environment:database_query_duration_seconds:p95_rate5m")
    dbbudget = slo_step(r, "database-query-success", "SLODatabaseBudgetBurn", budget=True)
    b.row("Resources")
    b.add(
        S("timeseries", "Railway memory used / limit", "Memory of each Railway service as a share of its "
          "limit; RailwayMemorySaturated fires above the dashed line.", "percentunit",
          [P('max by (project, service, environment) (railway_service_memory_usage_gigabytes{service=~"$service"}) '
             "/ on (project, service, environment) (max by (project, service, environment) "
             '(railway_service_memory_limit_gigabytes{service=~"$service"}) > 0)', "{{service}} ({{environment}})")],
          th_alert(mem), runbook_links(mem), w=8, maxv=1, minv=0),
        S("timeseries", "Railway CPU used / limit", "CPU cores used by each Railway service as a share of its "
          "limit; RailwayCPUSaturated fires above the dashed line.", "percentunit",
          [P('max by (project, service, environment) (railway_service_cpu_usage_cores{service=~"$service"}) '
             "/ on (project, service, environment) (max by (project, service, environment) "
             '(railway_service_cpu_limit_cores{service=~"$service"}) > 0)', "{{service}} ({{environment}})")],
          th_alert(cpu), runbook_links(cpu), w=8, maxv=1, minv=0),
        S("timeseries", "Database pool utilisation", "Connections in use as a share of the app's pool size; "
          "DatabasePoolSaturated fires above the dashed line.", "percentunit",
          [P(f"service_environment:database_connections:utilisation{{{SE}}}", "{{service}}")],
          th_alert(pool), runbook_links(pool), w=8, maxv=1, minv=0),
    )
    b.row("Database")
    b.add(
        S("stat", "Connections active / max", "Pool connections in use and the pool size, per service.", "short",
          [P(f"sum by (service) (database_connections_active{{{SE}}})", "{{service}} active", instant=True),
           P(f"sum by (service) (database_connections_max{{{SE}}})", "{{service}} max", instant=True)], w=8, h=5),
        S("stat", "Query p95 (5m)", "95th percentile database query time; DatabaseSlowQueries threshold.", "s",
          [P(f"service_environment:database_query_duration_seconds:p95_rate5m{{{SE}}}", "{{service}}",
             instant=True)], th_alert(slow), runbook_links(slow), w=8, h=5),
        S("stat", "Query error ratio", "Failed queries as a share of all; red above the database SLO's "
          "error budget (1 - 99.95%).", "percentunit",
          [P(db_error_ratio(SE), "{{service}}", instant=True)],
          th_alert([dbbudget]), runbook_links([dbbudget]), w=8, h=5),
    )
    b.row("Alerts")
    b.add(S("table", "Firing and pending alerts", "Every alert Prometheus evaluates as pending or firing now, "
            "with its severity and service. Details and silences: Alertmanager (http://127.0.0.1:9093).", "none",
            [P("sort_desc(sum by (alertname, severity, service, alertstate) (ALERTS))", instant=True, fmt="table")],
            links=[("Alertmanager", "http://127.0.0.1:9093/#/alerts")], w=24))
    return b


def slos(r: Rules) -> Board:
    b = Board(r, "obs-slo", "SLOs and Error Budgets", "Overview",
              "Every SLO in slo/ (rendered into prometheus/rules/slo-*.yml): objective, compliance over 30 days, "
              "error budget left and burn rate against the multiwindow burn-rate alert factors.",
              ["Are we meeting each SLO over 30 days, and how much error budget is left?",
               "How fast is each budget burning compared with the page and ticket burn rates?"],
              ["obs-stack", "slo"], refresh="1m", time_from="now-24h")
    b.var("slo", "SLO", "slo:objective:ratio", "sloth_id", description="SLO id (sloth_id).")
    b.var("service", "Service", 'slo:sli_error:ratio_rate5m{sloth_id=~"$slo"}',
          description="The app's `service` label on the SLI series.")
    deploy_markers(b, "service")
    # One step per burn-rate factor of the reference SLO alert (the same factors serve every SLO).
    factors = {}
    for s in r.burn_steps("SLOAvailabilityBudgetBurn"):
        factors[s.value] = s
    burn_th = th_alert(list(factors.values()))
    F = 'sloth_id=~"$slo", service=~"$service"'
    b.row("Compliance")
    b.add(
        S("stat", "Objective", "Each SLO's objective (slo:objective:ratio).", "percentunit",
          [P('slo:objective:ratio{sloth_id=~"$slo"}', "{{sloth_id}}", instant=True)], w=8, h=6),
        S("stat", "SLI over 30 days", "Share of good events over the 30-day SLO window, per SLO and service.",
          "percentunit", [P(f"1 - slo:sli_error:ratio_rate30d{{{F}}}", "{{sloth_id}} {{service}}", instant=True)],
          w=8, h=6),
        S("bargauge", "Error budget remaining (30 days)", "1 - (errors over 30 days / budget). Below 0 the "
          "budget is spent (red); under 25% left, slow down risky changes.", "percentunit",
          [P(f"slo:period_error_budget_remaining:ratio{{{F}}}", "{{sloth_id}} {{service}}", instant=True)],
          th_static((None, "red"), (0, "orange"), (0.25, "green")),
          [("Runbook: SLO budget burn", "https://github.com/obs-stack/obs-stack/blob/main/runbooks/slo-availability-budget-burn.md")],
          w=8, h=6, minv=-1, maxv=1),
    )
    b.row("Burn rate")
    b.add(
        S("timeseries", "Current burn rate (5m)", "How many times faster than sustainable each budget burns "
          "(slo:current_burn_rate:ratio). Dashed: the burn-rate factors of the multiwindow alerts "
          "(ticket 1x and 3x, page 6x and 14.4x).", "suffix:x",
          [P(f"slo:current_burn_rate:ratio{{{F}}}", "{{sloth_id}} {{service}}")], burn_th,
          runbook_links(list(factors.values())), w=12),
        S("timeseries", "SLI error ratio by window", "Error ratio of the selected SLOs over the alert windows "
          "(5m, 1h, 6h, 3d).", "percentunit",
          [P(f"slo:sli_error:ratio_rate{w}{{{F}}}", "{{sloth_id}} {{service}} " + w) for w in ("5m", "1h", "6h", "3d")],
          w=12),
        S("table", "Burn-rate alerts", "SLO burn-rate alerts pending or firing now.", "none",
          [P('sum by (alertname, severity, sloth_id, service, alertstate) (ALERTS{alertname=~"SLO.*BudgetBurn"})',
             instant=True, fmt="table")], w=24, h=6),
    )
    return b


def all_boards(r: Rules) -> list[Board]:
    return [system_health(r), slos(r)]
