"""Application dashboards: System Health, API Performance, User Activity and Web Vitals, Cost and
Tokens, Database (Supabase), SLOs and Error Budgets (docs/dashboards.md).
Metric names: docs/metrics-contract.md; the golden-signal recording rules are read where they exist."""
from __future__ import annotations

from lib import (Board, P, L, T, PanelSpec as S, Th, dash_url, explore_url, runbook_links, th_alert, th_floor,
                 th_static)
from boards_cost import platform_costs
from markers import deploy_markers
from rules import Rules, Step

SE = 'service=~"$service", environment=~"$environment"'
# Loki: the OTLP resource attributes service.name / deployment.environment.name are stream labels.
# Loki refuses a selector whose every matcher matches "", hence the extra `=~".+"` for the All value.
LOKI_SEL = '{service_name=~".+", service_name=~"$service", deployment_environment_name=~"$environment"}'

UP_MAP = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                         "1": {"text": "UP", "color": "green", "index": 1}}}]


def _slo_step(rules: Rules, sloth_id: str, alert: str, budget: bool = False) -> Step:
    """The objective of an SLO (or its error budget, 1 - objective) as a threshold step."""
    obj = rules.slo_objectives()[sloth_id]
    return Step(f"{alert} ({sloth_id})", "high", round(1 - obj, 10) if budget else obj, ">" if budget else "<",
                rules.runbook(alert))


LLM_P95 = "service_environment_operation_model:gen_ai_client_operation_duration_seconds:p95_rate5m"


def _llm_th(r: Rules) -> tuple[Th | None, list]:
    steps = r.steps_if_defined("LLMHighLatency", LLM_P95)
    return (th_alert(steps) if steps else None), runbook_links(steps)


def db_error_ratio(sel: str, window: str = "$__rate_interval") -> str:
    """Failed / all queries over the panel's window, with the same fallback as the recording rule
    service_environment:database_queries:error_ratio_rate5m: a healthy database (no error series yet) shows 0."""
    fn = "rate" if window == "$__rate_interval" else "increase"
    return (f'(sum by (service) ({fn}(database_queries_total{{{sel}, status="error"}}[{window}])) '
            f"or sum by (service) ({fn}(database_queries_total{{{sel}}}[{window}])) * 0) "
            f"/ sum by (service) ({fn}(database_queries_total{{{sel}}}[{window}]))")


def _app_vars(b: Board, metric: str = "service_environment:http_requests:rate5m") -> Board:
    b.var("environment", "Environment", metric, description="The app's `environment` label (prod, beta, ...).")
    b.var("service", "Service", metric + '{environment=~"$environment"}',
          description="The app's `service` label (Railway service / Vercel project name).")
    return b


def system_health(r: Rules) -> Board:
    b = Board(r, "obs-system", "System Health", "Overview",
              "Real-time overview for the on-call engineer: is the API up, are errors and latency within their "
              "alert thresholds, are resources and the database healthy, what is firing.",
              ["Is the API up and answering within its error and latency thresholds right now?",
               "Are Railway resources or the database pool close to saturation?",
               "Which alerts are firing or pending?"],
              ["obs-stack", "overview"], refresh="30s")
    _app_vars(b)
    deploy_markers(b, "service")
    b.link("API Performance", dash_url("obs-api")).link("SLOs and Error Budgets", dash_url("obs-slo"))
    b.link("Logs in Explore", explore_url("loki", LOKI_SEL))
    err5 = r.steps("APIHighErrorRate", "service_environment:http_requests:error_ratio_rate5m")
    err1 = r.steps("APIHighErrorRate", "service_environment:http_requests:error_ratio_rate1m")
    p95 = r.steps("APIHighLatency", "service_environment:http_request_duration_seconds:p95_rate5m")
    p99 = r.steps("APIHighLatency", "service_environment:http_request_duration_seconds:p99_rate5m")
    down = r.steps("APIDown")
    avail = _slo_step(r, "api-availability-prod", "SLOAvailabilityBudgetBurn")
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
    dbbudget = _slo_step(r, "database-query-success", "SLODatabaseBudgetBurn", budget=True)
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


def api_performance(r: Rules) -> Board:
    b = Board(r, "obs-api", "API Performance", "Applications",
              "Deep dive into an API for debugging: traffic and errors by endpoint, latency distribution with "
              "exemplars to traces, 5xx logs with trace links, slow traces, and dependencies.",
              ["Which endpoints take the traffic, fail, or are slow?",
               "What did a failing or slow request do (exemplar -> trace, 5xx log line -> trace)?",
               "Are the database, the LLM provider, the queue or logins the cause?"],
              ["obs-stack", "api"], datasources=("prometheus", "loki", "tempo"))
    _app_vars(b)
    deploy_markers(b, "service")
    b.var("endpoint", "Endpoint", 'http_requests_total{service=~"$service", environment=~"$environment"}',
          description="Route template (`endpoint` label).")
    F = SE + ', endpoint=~"$endpoint"'
    err5 = r.steps("APIHighErrorRate", "service_environment:http_requests:error_ratio_rate5m")
    p95 = r.steps("APIHighLatency", "service_environment:http_request_duration_seconds:p95_rate5m")
    b.link("Logs in Explore", explore_url("loki", LOKI_SEL))
    b.row("Traffic and errors")
    b.add(
        S("timeseries", "Requests per second by endpoint", "Request rate per route template, stacked.", "reqps",
          [P(f"sum by (endpoint) (rate(http_requests_total{{{F}}}[$__rate_interval]))", "{{endpoint}}")],
          stack=True, bars=True, w=12),
        S("piechart", "Responses by status code", "Responses per HTTP status over the time range: 5xx are "
          "ours (they spend the error budget), 4xx are the client's.", "short",
          [P(f"sum by (status_code) (increase(http_requests_total{{{F}}}[$__range]))", "{{status_code}}",
             instant=True)], w=6),
        S("stat", "Requests in flight", "Requests being served now (saturation).", "short",
          [P(f"service_environment:http_requests_in_flight:sum{{{SE}}}", "{{service}}", instant=True)], w=6),
        S("timeseries", "5xx ratio by endpoint", "5xx share per endpoint; dashed lines are the "
          "APIHighErrorRate thresholds (which apply to the whole service).", "percentunit",
          [P(f'sum by (endpoint) (rate(http_requests_total{{{F}, status_code=~"5.."}}[$__rate_interval])) '
             f"/ sum by (endpoint) (rate(http_requests_total{{{F}}}[$__rate_interval]))", "{{endpoint}}")],
          th_alert(err5), runbook_links(err5), w=24),
    )
    b.row("Latency")
    b.add(
        S("timeseries", "p95 latency by endpoint", "95th percentile per endpoint, with exemplars: click a dot "
          "to open that request's trace in Tempo. Dashed: APIHighLatency p95 thresholds.", "s",
          [P(f"histogram_quantile(0.95, sum by (endpoint, le) "
             f"(rate(http_request_duration_seconds_bucket{{{F}}}[$__rate_interval])))", "{{endpoint}}",
             exemplar=True)], th_alert(p95), runbook_links(p95)),
        S("heatmap", "Latency distribution", "Requests per latency bucket over time (all selected endpoints).",
          "s", [P(f"sum by (le) (rate(http_request_duration_seconds_bucket{{{F}}}[$__rate_interval]))",
                  "{{le}}", fmt="heatmap")]),
        S("timeseries", "Latency percentiles (p50, p95, p99)", "Percentiles of the selected endpoints; dashed "
          "lines: APIHighLatency p95 thresholds.", "s",
          [P(f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{F}}}"
             f"[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)],
          th_alert(p95), runbook_links(p95)),
        S("bargauge", "Slowest endpoints (p95 over the time range)", "p95 per endpoint over the whole range, "
          "slowest first; colours are the APIHighLatency p95 thresholds.", "s",
          [P(f"sort_desc(histogram_quantile(0.95, sum by (endpoint, le) "
             f"(rate(http_request_duration_seconds_bucket{{{F}}}[$__range]))))", "{{endpoint}}", instant=True)],
          th_alert(p95), runbook_links(p95)),
    )
    b.row("Failing requests: logs and traces")
    fivexx = LOKI_SEL + ' | status_code=~"5.."'
    b.add(
        S("logs", "5xx responses (access log)", "Access-log lines of requests answered with a 5xx. Open a line "
          "and follow TraceID to the trace (Loki derived field). User ids are never logged, only hashes.",
          None, [L(fivexx)], links=[("Open in Explore", explore_url("loki", fivexx))], w=12, h=10),
        S("traces", "Failed or slow traces", "Traces of the selected service with an error or longer than 2 s "
          "(TraceQL, newest first).", None,
          [T('{ resource.service.name =~ "$service" && (status = error || duration > 2s) }')],
          links=[("Open in Explore", explore_url("tempo", '{ resource.service.name =~ "$service" && status = error }'))],
          w=12, h=10),
    )
    slow = r.steps("DatabaseSlowQueries", "service_environment:database_query_duration_seconds:p95_rate5m")
    queue = r.steps("QueueBacklogHigh", "service_environment_queue:queue_depth_messages:max")
    stale = r.steps("QueueMessagesStale", "service_environment_queue:queue_oldest_message_age_seconds:max")
    auth = r.steps("AuthFailureSpike", "service_environment:auth_attempts_failed:rate5m")
    b.row("Dependencies")
    b.add(
        S("stat", "Database query p95", "95th percentile query time; DatabaseSlowQueries threshold.", "s",
          [P(f"service_environment:database_query_duration_seconds:p95_rate5m{{{SE}}}", "{{service}}",
             instant=True)], th_alert(slow), runbook_links(slow), w=6, h=5),
        S("stat", "LLM call p95", "95th percentile duration of LLM calls (OTel GenAI "
          "gen_ai.client.operation.duration); LLMHighLatency threshold when that alert is defined.", "s",
          [P(f"histogram_quantile(0.95, sum by (le) "
             f"(rate(gen_ai_client_operation_duration_seconds_bucket{{{SE}}}[$__rate_interval])))", "p95",
             instant=True)], *_llm_th(r), w=6, h=5),
        S("stat", "LLM call error ratio", "Share of LLM calls that ended with an error type.", "percentunit",
          [P(f'(sum(rate(gen_ai_client_operation_duration_seconds_count{{{SE}, error_type!=""}}[$__rate_interval])) '
             f"or vector(0)) / sum(rate(gen_ai_client_operation_duration_seconds_count{{{SE}}}[$__rate_interval]))",
             "errors", instant=True)], w=6, h=5),
        S("stat", "Failed logins per second", "Rejected authentication attempts (5m rate); AuthFailureSpike "
          "also needs them to be over 25% of attempts.", "ops",
          [P(f"service_environment:auth_attempts_failed:rate5m{{{SE}}}", "{{service}}", instant=True)],
          th_alert(auth), runbook_links(auth), w=6, h=5),
        S("timeseries", "Queue depth", "Messages waiting per queue; QueueBacklogHigh threshold dashed.", "short",
          [P(f"service_environment_queue:queue_depth_messages:max{{{SE}}}", "{{queue}}")],
          th_alert(queue), runbook_links(queue + stale)),
        S("timeseries", "Logins by result", "Authentication attempts per second by result.", "ops",
          [P(f"sum by (result) (rate(auth_attempts_total{{{SE}}}[$__rate_interval]))", "{{result}}")]),
    )
    return b


VITALS = [  # metric, title, unit, good, poor (web.dev thresholds at p75; no alert is defined on them)
    ("lcp_seconds", "LCP", "s", 2.5, 4.0),
    ("inp_seconds", "INP", "s", 0.2, 0.5),
    ("cls", "CLS", "none", 0.1, 0.25),
    ("fcp_seconds", "FCP", "s", 1.8, 3.0),
    ("ttfb_seconds", "TTFB", "s", 0.8, 1.8),
]


def web_vitals(r: Rules) -> Board:
    b = Board(r, "obs-web-vitals", "User Activity and Web Vitals", "Applications",
              "What users experience and do: Core Web Vitals at p75 by page and device (Next.js "
              "useReportWebVitals beacons), page loads, feature usage and logins. Active users, "
              "sessions, retention and ratings have no metric in the contract yet.",
              ["Do real users get good Core Web Vitals (p75 LCP, INP, CLS) on every page and device?",
               "Which pages and features are used, and do logins succeed?"],
              ["obs-stack", "web"], refresh="1m", time_from="now-6h")
    _app_vars(b, "web_vitals_beacons_total")
    b.var("page", "Page", 'web_vitals_lcp_seconds_count{service=~"$service"}', description="Page template.")
    b.var("device", "Device", 'web_vitals_lcp_seconds_count{service=~"$service"}', "device_type",
          description="Device type of the beacon.")
    WV = SE + ', page=~"$page", device_type=~"$device"'
    b.row("Core Web Vitals (p75 over the time range)")
    for metric, name, unit, good, poor in VITALS:
        b.add(S("stat", f"{name} p75", f"75th percentile of {name} over the range. Thresholds are web.dev's "
                f"'good' ({good}) and 'poor' ({poor}); no alert uses them.", unit,
                [P(f"histogram_quantile(0.75, sum by (le) (rate(web_vitals_{metric}_bucket{{{WV}}}[$__range])))",
                   name, instant=True)],
                th_static((None, "green"), (good, "orange"), (poor, "red")),
                [("web.dev: Web Vitals", "https://web.dev/articles/vitals")], w=5 if name != "TTFB" else 4, h=5))
    b.row("Web Vitals over time")
    for metric, name, unit, good, poor in VITALS[:3]:
        b.add(S("timeseries", f"{name} p75 by page", f"p75 {name} per page template; dashed lines at web.dev's "
                f"good/poor thresholds.", unit,
                [P(f"histogram_quantile(0.75, sum by (page, le) (rate(web_vitals_{metric}_bucket{{{WV}}}"
                   f"[$__rate_interval])))", "{{page}}")],
                th_static((None, "green"), (good, "orange"), (poor, "red")), w=8))
    b.row("Activity")
    def feature(ep: str, method: str) -> str:
        return (f'sum(increase(http_requests_total{{{SE}, endpoint="{ep}", method="{method}", '
                f'status_code=~"2.."}}[$__range]))')
    b.add(
        S("timeseries", "Page loads per minute by page", "LCP beacons per minute per page: one per page load "
          "that reported LCP.", "cpm",
          [P(f"sum by (page) (rate(web_vitals_lcp_seconds_count{{{WV}}}[$__rate_interval])) * 60", "{{page}}")],
          stack=True, w=12),
        S("piechart", "Page loads by device", "Share of page loads per device type over the range.", "short",
          [P(f"sum by (device_type) (increase(web_vitals_lcp_seconds_count{{{WV}}}[$__range]))", "{{device_type}}",
             instant=True)], w=6),
        S("stat", "Feature usage (time range)", "Successful chat messages, searches and jobs submitted.", "short",
          [P(feature("/api/chat", "POST"), "Chat messages", instant=True),
           P(feature("/api/search", "GET"), "Searches", instant=True),
           P(feature("/api/jobs", "POST"), "Jobs", instant=True)], w=6),
        S("timeseries", "Logins by result", "Login attempts per second by result.", "ops",
          [P(f"sum by (result) (rate(auth_attempts_total{{{SE}}}[$__rate_interval]))", "{{result}}")]),
        S("timeseries", "Rejected beacons by reason", "Web Vitals beacons refused by the ingest endpoint "
          "(malformed, too large, rate limited, origin not allowed).", "ops",
          [P(f"sum by (reason) (rate(web_vitals_rejected_total{{{SE}}}[$__rate_interval]))", "{{reason}}")]),
    )
    return b


def cost(r: Rules) -> Board:
    budget = r.vector_value("obs:cost_budget_usd:per_day")
    tokens = r.vector_value("obs:llm_token_budget:per_day")
    factor = r.factor("SpendRateOverBudget", "obs:cost_budget_usd:per_day")
    daily = Step("DailySpendOverBudget", r.severity("DailySpendOverBudget"), budget, ">", r.runbook("DailySpendOverBudget"))
    rate_step = Step("SpendRateOverBudget", r.severity("SpendRateOverBudget"), budget * factor, ">", r.runbook("SpendRateOverBudget"))
    used = Step("DailySpendOverBudget", r.severity("DailySpendOverBudget"), 1.0, ">", r.runbook("DailySpendOverBudget"))
    tok = Step("LLMTokenBudgetExceeded", r.severity("LLMTokenBudgetExceeded"), tokens, ">", r.runbook("LLMTokenBudgetExceeded"))
    b = Board(r, "obs-cost", "Cost and Tokens", "Applications",
              "One cost view: Railway, GitHub Actions, Vercel and LLM/API spend this month, side by side and in "
              "total, with the month-end projection, against the budgets (prometheus/rules/budgets.yml); then "
              "LLM/API spend against its daily budget, where it goes by model and operation, and token use.",
              ["What have Railway, GitHub Actions, Vercel and the LLM calls cost this month, and where will the "
               "month end against the budgets?",
               "Are we within today's spend and token budgets, and where will the day end at this rate?",
               "Which models and operations cost the most, per request and per token?"],
              ["obs-stack", "cost"], refresh="5m", time_from="now-24h")
    _app_vars(b, "api_cost_usd_total")
    b.var("model", "Model", 'api_cost_usd_total{service=~"$service"}', description="LLM model.")
    F = SE + ', model=~"$model"'
    platform_costs(r, b)
    b.row("LLM/API spend against the daily budget")
    b.add(
        S("stat", "Spend, last 24 h", f"LLM/API spend over the last 24 hours (all services); red above the "
          f"daily budget (${budget:g}, DailySpendOverBudget).", "currencyUSD",
          [P("obs:api_cost_usd:increase24h", "24h spend", instant=True)], th_alert([daily]),
          runbook_links([daily], [("Budgets (prometheus/rules/budgets.yml)",
                                   "https://github.com/obs-stack/obs-stack/blob/main/prometheus/rules/budgets.yml")]),
          w=6, h=5),
        S("stat", "Projected daily spend", f"The last hour's spend rate times 24 h; SpendRateOverBudget fires "
          f"above {factor:g} x the daily budget.", "currencyUSD",
          [P("obs:api_cost_usd:projected_daily_rate1h", "projected", instant=True)], th_alert([rate_step]),
          runbook_links([rate_step]), w=6, h=5),
        S("gauge", "Daily budget used", "Last 24 h spend as a share of the daily budget.", "percentunit",
          [P("obs:api_cost_usd:increase24h / on () obs:cost_budget_usd:per_day", "used", instant=True)],
          th_alert([used]), runbook_links([used]), w=6, h=5, minv=0, maxv=factor),
        S("stat", "LLM tokens, last 24 h", f"Tokens used in the last 24 hours; red above the daily token "
          f"budget ({tokens:g}, LLMTokenBudgetExceeded).", "short",
          [P("sum(increase(llm_tokens_total[24h]))", "tokens", instant=True)], th_alert([tok]),
          runbook_links([tok]), w=6, h=5),
    )
    b.row("LLM/API: where the money goes")
    b.add(
        S("timeseries", "Spend rate by model ($/hour)", "Dollars per hour per model.", "currencyUSD",
          [P(f"sum by (model) (rate(api_cost_usd_total{{{F}}}[$__rate_interval])) * 3600", "{{model}}")],
          stack=True),
        S("piechart", "Spend by model (time range)", "Dollars per model over the range.", "currencyUSD",
          [P(f"sum by (model) (increase(api_cost_usd_total{{{F}}}[$__range]))", "{{model}}", instant=True)], w=6),
        S("piechart", "Spend by operation (time range)", "Dollars per operation over the range.", "currencyUSD",
          [P(f"sum by (operation) (increase(api_cost_usd_total{{{F}}}[$__range]))", "{{operation}}",
             instant=True)], w=6),
        S("timeseries", "Average cost per chat request", "Spend divided by successful POST /api/chat requests.",
          "currencyUSD",
          [P(f"sum(rate(api_cost_usd_total{{{F}}}[$__rate_interval])) / "
             f'sum(rate(http_requests_total{{{SE}, endpoint="/api/chat", status_code=~"2.."}}[$__rate_interval]))',
             "$ per chat")], w=24),
    )
    b.row("LLM tokens")
    b.add(
        S("timeseries", "Tokens per second by model and type", "Input and output tokens per second.",
          "suffix: tok/s",
          [P(f"sum by (model, token_type) (rate(llm_tokens_total{{{F}}}[$__rate_interval]))",
             "{{model}} {{token_type}}")], stack=True, w=8),
        S("bargauge", "Tokens by model (time range)", "Tokens per model and type over the range.", "short",
          [P(f"sum by (model, token_type) (increase(llm_tokens_total{{{F}}}[$__range]))",
             "{{model}} {{token_type}}", instant=True)], w=8),
        S("timeseries", "LLM call p95 by model", "95th percentile LLM call duration per model (OTel GenAI); "
          "LLMHighLatency threshold dashed when that alert is defined.", "s",
          [P(f"histogram_quantile(0.95, sum by (gen_ai_request_model, le) "
             f"(rate(gen_ai_client_operation_duration_seconds_bucket{{{SE}}}[$__rate_interval])))",
             "{{gen_ai_request_model}}")], *_llm_th(r), w=8),
    )
    return b


def database(r: Rules) -> Board:
    b = Board(r, "obs-database", "Database (Supabase)", "Applications",
              "The database from both sides: the app's pool and queries (SQLAlchemy instrumentation) and "
              "Supabase's project health and Postgres metrics.",
              ["Is the connection pool or Postgres running out of connections?",
               "Are queries slow or failing, on which table, and is Supabase healthy?"],
              ["obs-stack", "database", "supabase"])
    _app_vars(b, "database_queries_total")
    b.var("project", "Supabase project", "supabase_project_status", description="Supabase project name.")
    pool = r.steps("DatabasePoolSaturated", "service_environment:database_connections:utilisation")
    slow = r.steps("DatabaseSlowQueries", "service_environment:database_query_duration_seconds:p95_rate5m")
    budget = _slo_step(r, "database-query-success", "SLODatabaseBudgetBurn", budget=True)
    objective = _slo_step(r, "database-query-success", "SLODatabaseBudgetBurn")
    down = r.steps("DatabaseDown", severities=["critical"])
    sat = r.steps("SupabaseConnectionsSaturated")
    b.row("From the app: pool and queries")
    b.add(
        S("gauge", "Pool utilisation", "Connections in use / pool size; DatabasePoolSaturated threshold.",
          "percentunit", [P(f"service_environment:database_connections:utilisation{{{SE}}}", "{{service}}",
                            instant=True)], th_alert(pool), runbook_links(pool), w=6, h=6, minv=0, maxv=1),
        S("stat", "Query success (time range)", "Share of successful queries over the dashboard's time range; "
          "red below the database SLO's 99.95% objective (30-day view: SLOs and Error Budgets).", "percentunit",
          [P("1 - " + db_error_ratio(SE, "$__range"), "{{service}}", instant=True)], th_floor(objective.value, objective), runbook_links([objective]),
          w=6, h=6),
        S("stat", "Query error ratio", "Failed queries / all queries; red above the SLO's error budget.",
          "percentunit", [P(db_error_ratio(SE), "{{service}}", instant=True)], th_alert([budget]), runbook_links([budget]), w=6, h=6),
        S("stat", "Query p95 (5m)", "95th percentile query time; DatabaseSlowQueries threshold.", "s",
          [P(f"service_environment:database_query_duration_seconds:p95_rate5m{{{SE}}}", "{{service}}",
             instant=True)], th_alert(slow), runbook_links(slow), w=6, h=6),
        S("timeseries", "Connections: active, idle, pool size", "Pool connections by state.", "short",
          [P(f"sum by (service) (database_connections_active{{{SE}}})", "{{service}} active"),
           P(f"sum by (service) (database_connections_idle{{{SE}}})", "{{service}} idle"),
           P(f"sum by (service) (database_connections_max{{{SE}}})", "{{service}} max")], w=8),
        S("timeseries", "Queries per second by operation", "Statements per second by SQL operation and status.",
          "ops", [P(f"sum by (operation, status) (rate(database_queries_total{{{SE}}}[$__rate_interval]))",
                    "{{operation}} {{status}}")], w=8),
        S("timeseries", "Query p95 by table", "95th percentile per table, with exemplars to the query's trace; "
          "DatabaseSlowQueries threshold dashed.", "s",
          [P(f"histogram_quantile(0.95, sum by (table, le) "
             f"(rate(database_query_duration_seconds_bucket{{{SE}}}[$__rate_interval])))", "{{table}}",
             exemplar=True)], th_alert(slow), runbook_links(slow), w=8),
    )
    b.row("Supabase: project health and Postgres")
    b.add(
        S("stat", "Database service healthy", "Supabase's health check of each project's Postgres (`db` "
          "service); DatabaseDown pages when it reports unhealthy.", "none",
          [P('min by (project) (supabase_service_healthy{project=~"$project", service="db"})', "{{project}}",
             instant=True)], th_floor(1, down[0]), runbook_links(down), w=8, h=5, mappings=UP_MAP,
          color_background=True),
        S("table", "Project status", "Current Supabase project status (Management API).", "none",
          [P('max by (project, status) (supabase_project_status{project=~"$project"}) == 1', instant=True,
             fmt="table")], links=runbook_links(r.steps("SupabaseProjectUnhealthy")), w=8, h=5),
        S("stat", "Postgres up (metrics endpoint)", "`pg_up` from Supabase's Prometheus endpoint "
          "(scrape config from `obs-bridge supabase scrape-config`; the demo scrapes the simulator).", "none",
          [P('min by (supabase_project) (pg_up{supabase_project=~"$project"})', "{{supabase_project}}", instant=True)],
          th_floor(1, down[0]), runbook_links(down), w=8, h=5, mappings=UP_MAP, color_background=True),
        S("timeseries", "Postgres connections / max_connections", "Server-side connections as a share of "
          "max_connections (Supabase metrics endpoint); SupabaseConnectionsSaturated threshold dashed.",
          "percentunit",
          [P('sum by (supabase_project) (connection_stats_connection_count{supabase_project=~"$project"}) '
             '/ on (supabase_project) (sum by (supabase_project) '
             '(max_connections_connection_count{supabase_project=~"$project"}) > 0)', "{{supabase_project}}")],
          th_alert(sat), runbook_links(sat), w=24),
    )
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
    return [system_health(r), slos(r), api_performance(r), web_vitals(r), cost(r), database(r)]
