"""Application dashboards: API Performance, User Activity and Web Vitals, Cost and Tokens, Database (Supabase)
(docs/dashboards.md), and the helpers the overview boards (boards_overview.py) share with them.
Metric names: docs/metrics-contract.md; the golden-signal recording rules are read where they exist."""
from __future__ import annotations

from lib import (UP_MAP, Board, P, L, T, PanelSpec as S, Th, explore_url, runbook_links, th_alert, th_floor,
                 th_static)
from boards_cost import platform_costs
from markers import deploy_markers
from rules import Rules, Step

SE = 'service=~"$service", environment=~"$environment"'
# Loki: the OTLP resource attributes service.name / deployment.environment.name are stream labels.
# Loki refuses a selector whose every matcher matches "", hence the extra `=~".+"` for the All value.
LOKI_SEL = '{service_name=~".+", service_name=~"$service", deployment_environment_name=~"$environment"}'



def slo_step(rules: Rules, sloth_id: str, alert: str, budget: bool = False) -> Step:
    """The objective of an SLO (or its error budget, 1 - objective) as a threshold step."""
    obj = rules.slo_objectives()[sloth_id]
    return Step(f"{alert} ({sloth_id})", "high", round(1 - obj, 10) if budget else obj, ">" if budget else "<",
                rules.runbook(alert))


LLM_P95 = "service_environment_operation_model:gen_ai_client_operation_duration_seconds:p95_rate5m"


def llm_th(r: Rules) -> tuple[Th | None, list]:
    steps = r.steps_if_defined("LLMHighLatency", LLM_P95)
    return (th_alert(steps) if steps else None), runbook_links(steps)


def db_error_ratio(sel: str, window: str = "$__rate_interval") -> str:
    """Failed / all queries over the panel's window, with the same fallback as the recording rule
    service_environment:database_queries:error_ratio_rate5m: a healthy database (no error series yet) shows 0."""
    fn = "rate" if window == "$__rate_interval" else "increase"
    return (f'(sum by (service) ({fn}(database_queries_total{{{sel}, status="error"}}[{window}])) '
            f"or sum by (service) ({fn}(database_queries_total{{{sel}}}[{window}])) * 0) "
            f"/ sum by (service) ({fn}(database_queries_total{{{sel}}}[{window}]))")


def app_vars(b: Board, metric: str = "service_environment:http_requests:rate5m") -> Board:
    b.var("environment", "Environment", metric, description="The app's `environment` label (prod, beta, ...).")
    b.var("service", "Service", metric + '{environment=~"$environment"}',
          description="The app's `service` label (Railway service / Vercel project name).")
    return b


def api_performance(r: Rules) -> Board:
    b = Board(r, "obs-api", "API Performance", "Applications",
              "Deep dive into an API for debugging: traffic and errors by endpoint, latency distribution with "
              "exemplars to traces, 5xx logs with trace links, slow traces, and dependencies.",
              ["Which endpoints take the traffic, fail, or are slow?",
               "What did a failing or slow request do (exemplar -> trace, 5xx log line -> trace)?",
               "Are the database, the LLM provider, the queue or logins the cause?"],
              ["obs-stack", "api"], datasources=("prometheus", "loki", "tempo"))
    app_vars(b)
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
             instant=True)], *llm_th(r), w=6, h=5),
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
    app_vars(b, "web_vitals_beacons_total")
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
    app_vars(b, "api_cost_usd_total")
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
             "{{gen_ai_request_model}}")], *llm_th(r), w=8),
    )
    return b


def database(r: Rules) -> Board:
    b = Board(r, "obs-database", "Database (Supabase)", "Applications",
              "The database from both sides: the app's pool and queries (SQLAlchemy instrumentation) and "
              "Supabase's project health and Postgres metrics.",
              ["Is the connection pool or Postgres running out of connections?",
               "Are queries slow or failing, on which table, and is Supabase healthy?"],
              ["obs-stack", "database", "supabase"])
    app_vars(b, "database_queries_total")
    b.var("project", "Supabase project", "supabase_project_status", description="Supabase project name.")
    pool = r.steps("DatabasePoolSaturated", "service_environment:database_connections:utilisation")
    slow = r.steps("DatabaseSlowQueries", "service_environment:database_query_duration_seconds:p95_rate5m")
    budget = slo_step(r, "database-query-success", "SLODatabaseBudgetBurn", budget=True)
    objective = slo_step(r, "database-query-success", "SLODatabaseBudgetBurn")
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


def all_boards(r: Rules) -> list[Board]:
    return [api_performance(r), web_vitals(r), cost(r), database(r)]
