"""Stack dashboards (docs/dashboards.md): the platform bridges' own health and Stack Self-Monitoring.
Metric names: exporters/ (obs_bridges) and the components' own metrics."""
from __future__ import annotations

from boards_platforms import ratelimit_panel
from lib import UP_MAP, Board, P, PanelSpec as S, runbook_links, th_alert, th_floor
from rules import Rules

BRIDGES = "(railway|vercel|supabase|github)"
BRIDGE_NAMES = ("railway", "vercel", "supabase", "github")


def _rate_each(names: list[str], sel: str = "", window: str = "$__rate_interval") -> str:
    """`rate(a[w]) or rate(b[w]) ...`: one rate() per metric name. A single rate({__name__=~"a|b"}) fails
    ("vector cannot contain metrics with the same labelset") when two of its series share their labels once
    the name is dropped."""
    m = f"{{{sel}}}" if sel else ""
    return " or ".join(f"rate({n}{m}[{window}])" for n in names)


def _otelcol(name: str) -> list[str]:
    """Both spellings of a collector counter: 0.161.0 exposes it without `_total`, older builds with it."""
    return [name, name + "_total"]


def exporters(r: Rules) -> Board:
    b = Board(r, "obs-exporters", "Platform Bridges", "Stack",
              "Health of the four platform bridges (exporters/): scraped, polling their API successfully, fresh "
              "data, rate-limit headroom, poll errors.",
              ["Is every bridge up and polling its platform API, with fresh data?",
               "Is a bridge failing (bad token, outage, rate limit), and why?"],
              ["obs-stack", "stack", "bridges"])
    b.var("job", "Bridge", f'up{{job=~"{BRIDGES}-exporter"}}')
    J = 'job=~"$job"'
    down, upstream = r.steps("ExporterDown"), r.steps("ExporterUpstreamFailing")
    stale, rl = r.steps("ExporterDataStale"), r.steps("ExporterRateLimitLow")
    b.row("Up")
    b.add(
        S("stat", "Bridge scraped", "Prometheus can scrape the bridge (`up`); ExporterDown after 5 minutes.",
          "none", [P(f"up{{{J}}}", "{{job}}", instant=True)], th_floor(1, down[0]), runbook_links(down), w=12, h=5,
          mappings=UP_MAP, color_background=True),
        S("stat", "Platform API polled", "Every upstream of the bridge polled successfully at its last poll; "
          "ExporterUpstreamFailing after 15 minutes.", "none",
          [P(f'{{__name__=~"{BRIDGES}_up", {J}}}', "{{job}}", instant=True)], th_floor(1, upstream[0]),
          runbook_links(upstream), w=12, h=5, mappings=UP_MAP, color_background=True),
    )
    b.row("Polling")
    b.add(
        S("timeseries", "Data age", "Time since each upstream was last polled successfully; ExporterDataStale "
          "threshold dashed.", "s",
          [P(f'time() - max by (job, upstream) ({{__name__=~"{BRIDGES}_exporter_last_success_timestamp_seconds", {J}}})',
             "{{job}} {{upstream}}")], th_alert(stale), runbook_links(stale)),
        ratelimit_panel(BRIDGES, "$job", rl),
        S("timeseries", "Upstream up", "Last poll result per upstream (1 = success).", "none",
          [P(f'{{__name__=~"{BRIDGES}_exporter_upstream_up", {J}}}', "{{job}} {{upstream}}")],
          th_floor(1, upstream[0]), runbook_links(upstream), minv=0, maxv=1),
        S("timeseries", "Poll errors by reason", "Failed polls per second by upstream and reason (0 when none).",
          "ops",
          [P('sum by (job, upstream, reason) ('
             + _rate_each([f"{b}_exporter_poll_errors_total" for b in BRIDGE_NAMES], J)
             + f') or sum by (job) ({{__name__=~"{BRIDGES}_up", {J}}}) * 0', "{{job}} {{upstream}} {{reason}}")]),
        S("timeseries", "API requests by endpoint and code", "Requests to the platform APIs per second.", "reqps",
          [P("sum by (job, endpoint, code) ("
             + _rate_each([f"{b}_api_requests_total" for b in BRIDGE_NAMES], J) + ")",
             "{{job}} {{endpoint}} {{code}}")]),
        S("timeseries", "Poll duration", "Duration of the last poll per upstream.", "s",
          [P(f'{{__name__=~"{BRIDGES}_exporter_poll_duration_seconds", {J}}}', "{{job}} {{upstream}}")]),
        S("table", "Mode and version", "demo = the built-in simulator (no token set); live = the real API.",
          "none", [P(f'max by (job, mode, version) ({{__name__=~"{BRIDGES}_exporter_info", {J}}})', instant=True,
                     fmt="table")], w=24, h=6),
    )
    refused = r.steps_if_defined("GitHubWebhookDeliveriesRefused")
    b.row("GitHub webhooks")
    b.add(
        S("timeseries", "Webhook deliveries by result", "Requests to the GitHub bridge's receiver per second: "
          "counted, duplicate (the poller was first), redelivery, stale (out of order), and the refusals "
          "(bad_signature, too_large, rate_limited ...); GitHubWebhookDeliveriesRefused fires on refusals while "
          "nothing verifies.", "reqps",
          [P(f"sum by (event, result) (rate(github_webhook_deliveries_total{{{J}}}[$__rate_interval]))",
             "{{event}} {{result}}")], links=runbook_links(refused)),
        S("timeseries", "Since the last verified delivery", "Seconds since a delivery with a valid signature arrived "
          "(a quiet organisation has long gaps; refusals beside a growing gap mean the secrets differ).", "s",
          [P(f"time() - max by (job) (github_webhook_last_delivery_timestamp_seconds{{{J}}})", "{{job}}")],
          links=runbook_links(refused)),
        S("timeseries", "Delivery lag", "GitHub's delay: a completed run's updated_at to its delivery's arrival, "
          "p50 and p95.", "s",
          [P(f"histogram_quantile({q}, sum by (le) (rate(github_webhook_delivery_lag_seconds_bucket{{{J}}}"
             "[$__rate_interval])))", f"p{int(q * 100)}") for q in (0.5, 0.95)]),
        S("timeseries", "Repositories on webhooks", "Repositories whose deliveries arrive (polled only every "
          "GITHUB_RECONCILE_INTERVAL_SECONDS), of all repositories polled.", "none",
          [P(f"max by (job) (github_webhook_repositories{{{J}}})", "on webhooks"),
           P(f"max by (job) (github_actions_repositories{{{J}}})", "polled")]),
    )
    return b


STACK_JOBS = "prometheus|alertmanager|grafana|loki|tempo|otelcol|blackbox-exporter"


def stack(r: Rules) -> Board:
    b = Board(r, "obs-stack", "Stack Self-Monitoring", "Stack",
              "The observability stack watching itself: components up and probed, Prometheus rules, storage and "
              "alert delivery, Alertmanager notifications, the collector's intake and queues, Loki ingestion.",
              ["Is every component of the stack up, and are alerts being evaluated and delivered?",
               "Is telemetry refused, queued or dropped anywhere between apps and the stores?"],
              ["obs-stack", "stack"])
    b.var("job", "Component", f'up{{job=~"{STACK_JOBS}"}}')
    J = 'job=~"$job"'
    down, probe = r.steps("StackComponentDown"), r.steps("StackEndpointProbeFailed")
    rulefail, notif = r.steps("PrometheusRuleEvaluationFailures"), r.steps("PrometheusNotificationsFailing")
    amfail, refused = r.steps("AlertmanagerNotificationsFailing"), r.steps("CollectorRefusingData")
    storage, lokierr = r.steps("PrometheusStorageFull"), r.steps("LokiIngestionErrors")
    queue = r.steps("CollectorExportQueueFilling")
    b.row("Up")
    b.add(
        S("stat", "Components up", "Prometheus scrapes each component (`up`); StackComponentDown after 5 "
          "minutes DOWN.", "none", [P(f"up{{{J}}}", "{{job}}", instant=True)], th_floor(1, down[0]),
          runbook_links(down), w=12, h=5, mappings=UP_MAP, color_background=True),
        S("stat", "Endpoint probes", "Blackbox HTTP probes of each UI/API; StackEndpointProbeFailed after 5 "
          "minutes failing.", "none", [P('probe_success{probe_group="stack"}', "{{instance}}", instant=True)],
          th_floor(1, probe[0]), runbook_links(probe), w=12, h=5, mappings=UP_MAP, color_background=True),
        S("timeseries", "Resident memory by component", "Process memory of each component (compare with its "
          "compose mem_limit).", "bytes",
          [P(f"max by (job) (process_resident_memory_bytes{{{J}}})", "{{job}}"),
           P('otelcol_process_memory_rss{job=~"$job"}', "otelcol")]),
        S("timeseries", "Probe duration", "Time each blackbox probe takes.", "s",
          [P('probe_duration_seconds{probe_group="stack"}', "{{instance}}")]),
    )
    b.row("Prometheus and Alertmanager")
    b.add(
        S("timeseries", "Rule evaluation failures", "Failed rule evaluations per rule group; "
          "PrometheusRuleEvaluationFailures fires on any.", "short",
          [P("sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
             "{{rule_group}}")], th_alert(rulefail), runbook_links(rulefail), w=8),
        S("timeseries", "Alert delivery error ratio (Prometheus to Alertmanager)", "Failed / sent alert "
          "notifications; PrometheusNotificationsFailing threshold dashed.", "percentunit",
          [P("sum by (alertmanager) (rate(prometheus_notifications_errors_total[$__rate_interval])) / "
             "(sum by (alertmanager) (rate(prometheus_notifications_sent_total[$__rate_interval])) > 0) or "
             "sum by (alertmanager) (rate(prometheus_notifications_sent_total[$__rate_interval])) * 0",
             "{{alertmanager}}")], th_alert(notif), runbook_links(notif), w=8),
        S("timeseries", "Alertmanager notification failures", "Failed notifications per second by integration; "
          "AlertmanagerNotificationsFailing fires on any.", "ops",
          [P("sum by (integration) (rate(alertmanager_notifications_failed_total[$__rate_interval]))",
             "{{integration}}")], th_alert(amfail), runbook_links(amfail), w=8),
        S("timeseries", "Head series", "Active series in Prometheus' head block (cardinality).", "short",
          [P("prometheus_tsdb_head_series", "head series")], w=8),
        S("stat", "Size-based retention deletions (1 h)", "Blocks Prometheus deleted in the last hour to stay "
          "under its 4 GB cap (history shorter than 15 days); PrometheusStorageFull fires on any.", "short",
          [P("sum(increase(prometheus_tsdb_size_retentions_total[1h]))", "deletions", instant=True)],
          th_alert(storage), runbook_links(storage), w=8),
        S("timeseries", "Alerts in Alertmanager", "Alerts held by Alertmanager by state.", "short",
          [P("sum by (state) (alertmanager_alerts)", "{{state}}")], w=8),
    )
    b.row("Collector and Loki")
    b.add(
        S("timeseries", "Collector intake", "Spans and log records accepted per second by the collector's OTLP "
          "receiver.", "ops",
          [P(f"sum({_rate_each(_otelcol('otelcol_receiver_accepted_spans'))})", "spans"),
           P(f"sum({_rate_each(_otelcol('otelcol_receiver_accepted_log_records'))})",
             "log records")], w=8),
        S("timeseries", "Collector refused items", "Items the OTLP receiver refused (memory limiter, bad "
          "payloads) per signal; CollectorRefusingData fires on any. The demo sends no OTLP metrics (0).", "ops",
          [P(f"sum by (receiver) ({_rate_each(_otelcol(f'otelcol_receiver_refused_{sig}'))})"
             + (" or vector(0)" if sig == "metric_points" else ""), f"{{{{receiver}}}} {sig.replace('_', ' ')}")
           for sig in ("spans", "log_records", "metric_points")], th_alert(refused),
          runbook_links(refused + r.steps("CollectorExportFailing")), w=8),
        S("timeseries", "Collector export queue fill", "Batches waiting in each exporter's sending queue (one "
          "per signal) as a share of its capacity: a backend or forwarding gateway that is down fills it; "
          "CollectorExportQueueFilling fires over the line, CollectorExportQueueDropping once a full queue "
          "refuses data.", "percentunit",
          [P("max by (exporter, data_type) (otelcol_exporter_queue_size / (otelcol_exporter_queue_capacity > 0))",
             "{{exporter}} {{data_type}}")], th_alert(queue),
          runbook_links(queue + r.steps("CollectorExportQueueDropping")), w=8, minv=0, maxv=1),
        S("timeseries", "Loki log lines received", "Log lines per second arriving at Loki, by push format.",
          "ops", [P("sum by (format) (rate(loki_distributor_lines_received_total[$__rate_interval]))", "{{format}}")]),
        S("timeseries", "Loki push requests by status", "Push requests per second by route and status; "
          "LokiIngestionErrors fires on 5xx or discarded samples.", "reqps",
          [P('sum by (route, status_code) (rate(loki_request_duration_seconds_count{route=~"loki_api_v1_push|'
             'otlp_v1_logs"}[$__rate_interval]))', "{{route}} {{status_code}}")],
          links=runbook_links(lokierr + r.steps("TempoIngestionErrors"))),
    )
    return b


def all_boards(r: Rules) -> list[Board]:
    return [exporters(r), stack(r)]
