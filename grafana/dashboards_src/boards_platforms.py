"""Platform dashboards: Deployment Health across Railway, Vercel and GitHub Actions (docs/dashboards.md), one
dashboard per platform bridge (Railway, Vercel, GitHub Actions, Supabase), the bridges' own health, and
Stack Self-Monitoring. Metric names: exporters/ (obs_bridges) and the components' own metrics."""
from __future__ import annotations

from lib import Board, P, PanelSpec as S, dash_url, runbook_links, th_alert, th_floor, th_static
from markers import deploy_markers
from rules import Rules, Step

UP_MAP = [{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                         "1": {"text": "UP", "color": "green", "index": 1}}}]
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


def _ratelimit_panel(platform_re: str, job_re: str, step: list[Step], w: int = 12) -> S:
    return S("timeseries", "API rate limit left", "Share of the platform API's rate-limit window still "
             "available to the bridge; ExporterRateLimitLow fires below the dashed line.", "percentunit",
             [P(f'label_replace({{__name__=~"{platform_re}_api_ratelimit_remaining", job=~"{job_re}"}}, "platform", '
                f'"$1", "__name__", "(.+)_api_ratelimit_remaining") / on (job, platform) (label_replace('
                f'{{__name__=~"{platform_re}_api_ratelimit_limit", job=~"{job_re}"}}, "platform", "$1", "__name__", '
                f'"(.+)_api_ratelimit_limit") > 0)', "{{platform}}")],
             th_floor(step[0].value, step[0]), runbook_links(step), w=w, minv=0, maxv=1)


def deployments(r: Rules) -> Board:
    b = Board(r, "obs-deployments", "Deployment Health", "Platforms",
              "CI/CD across Railway, Vercel and GitHub Actions: success against the deployment SLO, what is "
              "deploying or failed now, build and step durations, smoke checks, with deployment annotations on "
              "every graph.",
              ["Are deployments succeeding on Railway, Vercel and GitHub Actions, against the deployment SLO?",
               "What is deploying or broken right now, how long do builds take, and did smoke checks pass?"],
              ["obs-stack", "deployments"], refresh="1m", time_from="now-24h")
    b.var("service", "Service / project", 'railway_deployment_status', "service",
          description="Railway service; Vercel panels read it as the project name (the alerts link "
                      "`var-service=<project>`).")
    b.var("environment", "Railway environment", 'railway_deployment_status{service=~"$service"}')
    b.var("repo", "Repository", "github_actions_workflow_last_conclusion", description="GitHub repository.")
    # Vercel panels read $service as the project; GitHub's filter is $repo.
    deploy_markers(b, "service", railway={"environment": "environment"}, github={"service": "repo"})
    slo = r.slo_objectives()["deployments-deployment-success"]
    slo_step = Step("SLODeploymentSuccessBudgetBurn", "high", slo, "<", r.runbook("SLODeploymentSuccessBudgetBurn"))
    gh = r.steps("GitHubWorkflowFailureRateHigh")
    RW = 'service=~"$service", environment=~"$environment"'
    VC = 'project=~"$service"'
    def inc(sel: str) -> str:
        return f"(sum(increase({sel}[$__range])) or vector(0))"
    failed = (inc(f'railway_deployments_total{{{RW}, status=~"FAILED|CRASHED"}}') + " + "
              + inc(f'vercel_deployments_total{{{VC}, state="ERROR"}}'))
    total = (inc(f'railway_deployments_total{{{RW}, status=~"SUCCESS|FAILED|CRASHED"}}') + " + "
             + inc(f'vercel_deployments_total{{{VC}, state=~"READY|ERROR"}}'))
    b.row("Success over the time range")
    b.add(
        S("stat", "Deployment success (Railway + Vercel)", "Finished deployments that succeeded, the deployment "
          "SLO's SLI over the time range; red below its objective.", "percentunit",
          [P(f"1 - ({failed}) / ({total} > 0)", "success", instant=True)], th_floor(slo, slo_step),
          runbook_links([slo_step]), w=6, h=5),
        S("stat", "Deployments finished", "Deployments that reached a final state, per platform.", "short",
          [P(f"sum(increase(railway_deployments_total{{{RW}}}[$__range]))", "Railway", instant=True),
           P(f"sum(increase(vercel_deployments_total{{{VC}}}[$__range]))", "Vercel", instant=True),
           P('sum(increase(github_actions_workflow_runs_total{repo=~"$repo", workflow=~"(?i).*(deploy|release).*"}'
             '[$__range]))', "GitHub deploy workflows", instant=True)], w=6, h=5),
        S("stat", "CI failure ratio", "Failed GitHub Actions runs / finished runs over the range; "
          "GitHubWorkflowFailureRateHigh threshold (it uses 6 h and at least 5 runs).", "percentunit",
          [P('sum(increase(github_actions_workflow_runs_total{repo=~"$repo", conclusion=~"failure|timed_out|'
             'startup_failure"}[$__range])) / sum(increase(github_actions_workflow_runs_total{repo=~"$repo", '
             'conclusion=~"success|failure|timed_out|startup_failure"}[$__range]))', "failure ratio", instant=True)],
          th_alert(gh), runbook_links(gh), w=6, h=5),
        S("stat", "Deployment error budget left (30 days)", "Deployment SLO budget remaining; empty until the "
          "window holds enough deployments for the SLI to count.", "percentunit",
          [P('slo:period_error_budget_remaining:ratio{sloth_service="deployments"}', "budget left", instant=True)],
          th_static((None, "red"), (0, "orange"), (0.25, "green")), runbook_links([slo_step]), w=6, h=5),
    )
    b.row("Now")
    b.add(
        S("table", "Railway: latest deployment per service", "Status of each service's latest deployment; "
          "RailwayDeploymentFailed fires on FAILED or CRASHED.", "none",
          [P(f"max by (project, service, environment, status) (railway_deployment_status{{{RW}}}) == 1",
             instant=True, fmt="table")], links=runbook_links(r.steps("RailwayDeploymentFailed")), w=8, h=8),
        S("table", "Vercel: latest deployment per project", "State of each project's latest deployment per "
          "target; VercelDeploymentFailed fires on ERROR.", "none",
          [P(f"max by (project, target, state) (vercel_latest_deployment_state{{{VC}}}) == 1", instant=True,
             fmt="table")], links=runbook_links(r.steps("VercelDeploymentFailed")), w=8, h=8),
        S("table", "GitHub Actions: latest conclusion per workflow", "Conclusion of each workflow's latest run; "
          "deploy and smoke workflows alert on failure.", "none",
          [P('max by (repo, workflow, conclusion) (github_actions_workflow_last_conclusion{repo=~"$repo"}) == 1',
             instant=True, fmt="table")], links=runbook_links(r.steps("GitHubDeployWorkflowFailed")), w=8, h=8),
        S("timeseries", "Deployments finished per platform and outcome", "Deployments reaching a final state "
          "per interval, with the deployment annotations.", "short",
          [P(f"sum by (status) (increase(railway_deployments_total{{{RW}}}[$__rate_interval]))", "Railway {{status}}"),
           P(f"sum by (state) (increase(vercel_deployments_total{{{VC}}}[$__rate_interval]))", "Vercel {{state}}")],
          bars=True, stack=True, w=24),
    )
    b.row("Durations (p95 over the time range)")
    def q(by: str, m: str, sel: str) -> str:
        return f"histogram_quantile(0.95, sum by ({by}, le) (increase({m}_bucket{{{sel}}}[$__range])))"
    b.add(
        S("bargauge", "Vercel build time p95 by project", "Build time (building to ready).", "s",
          [P(q("project", "vercel_deployment_build_duration_seconds", VC), "{{project}}", instant=True)], w=8),
        S("bargauge", "Railway deployment step p95", "Duration of each deployment step (build, deploy, ...).", "s",
          [P(q("step", "railway_deployment_step_duration_seconds", RW), "{{step}}", instant=True)], w=8),
        S("bargauge", "GitHub workflow run time p95", "Run duration per workflow.", "s",
          [P(q("workflow", "github_actions_workflow_run_duration_seconds", 'repo=~"$repo"'), "{{workflow}}",
             instant=True)], w=8),
    )
    smoke = r.steps("SmokeCheckFailed") + r.steps("SyntheticProbeFailed")
    b.row("Smoke checks")
    b.add(S("table", "Smoke workflows and probes", "Post-deployment checks: the latest run of workflows named "
            "*smoke* and the blackbox probes with probe_group=smoke (1 = passing).", "none",
            [P('max by (repo, workflow, conclusion) (github_actions_workflow_last_conclusion{repo=~"$repo", '
               'workflow=~"(?i).*smoke.*"}) == 1', instant=True, fmt="table"),
             P('min by (service, instance) (probe_success{probe_group="smoke", service=~"$service"})', instant=True,
               fmt="table")], links=runbook_links(smoke), w=24, h=6))
    return b


def railway(r: Rules) -> Board:
    b = Board(r, "obs-railway", "Railway", "Platforms",
              "Railway services from the Railway bridge: CPU, memory, disk and network against their limits, "
              "deployments and crash loops, and the estimated bill.",
              ["Is any Railway service near its CPU or memory limit, or crash-looping?",
               "What did the last deployments do, and what will this month cost?"],
              ["obs-stack", "railway", "platform"], time_from="now-6h")
    b.var("project", "Project", "railway_service_cpu_usage_cores")
    b.var("environment", "Environment", 'railway_service_cpu_usage_cores{project=~"$project"}')
    b.var("service", "Service", 'railway_service_cpu_usage_cores{project=~"$project", environment=~"$environment"}')
    deploy_markers(b, "service", railway={"project": "project", "environment": "environment"})
    F = 'project=~"$project", environment=~"$environment", service=~"$service"'
    BY = "max by (project, environment, service)"
    cpu, mem = r.steps("RailwayCPUSaturated"), r.steps("RailwayMemorySaturated")
    crash = r.steps("RailwayServiceRestarting")
    def ratio(use: str, lim: str) -> str:
        return f"{BY} ({use}{{{F}}}) / on (project, environment, service) ({BY} ({lim}{{{F}}}) > 0)"
    b.row("Resources")
    b.add(
        S("timeseries", "CPU used / limit", "CPU cores used as a share of the service's limit; "
          "RailwayCPUSaturated threshold dashed.", "percentunit",
          [P(ratio("railway_service_cpu_usage_cores", "railway_service_cpu_limit_cores"), "{{service}} ({{environment}})")],
          th_alert(cpu), runbook_links(cpu), minv=0, maxv=1),
        S("timeseries", "Memory used / limit", "Memory used as a share of the service's limit; "
          "RailwayMemorySaturated threshold dashed.", "percentunit",
          [P(ratio("railway_service_memory_usage_gigabytes", "railway_service_memory_limit_gigabytes"),
             "{{service}} ({{environment}})")], th_alert(mem), runbook_links(mem), minv=0, maxv=1),
        S("timeseries", "CPU cores used", "vCPU used per service.", "suffix: cores",
          [P(f"{BY} (railway_service_cpu_usage_cores{{{F}}})", "{{service}} ({{environment}})")], w=8),
        S("timeseries", "Memory used", "Memory used per service.", "decgbytes",
          [P(f"{BY} (railway_service_memory_usage_gigabytes{{{F}}})", "{{service}} ({{environment}})")], w=8),
        S("timeseries", "Disk used", "Volume and ephemeral disk used per service.", "decgbytes",
          [P(f"{BY} (railway_service_disk_usage_gigabytes{{{F}}})", "{{service}} volume"),
           P(f"{BY} (railway_service_ephemeral_disk_usage_gigabytes{{{F}}})", "{{service}} ephemeral")], w=8),
        S("timeseries", "Network", "Network received and sent per sample interval of Railway's metrics API.",
          "decgbytes",
          [P(f"{BY} (railway_service_network_rx_gigabytes{{{F}}})", "{{service}} rx"),
           P(f"{BY} (railway_service_network_tx_gigabytes{{{F}}})", "{{service}} tx")], w=24),
    )
    b.row("Deployments")
    b.add(
        S("table", "Latest deployment per service", "Status of each service's latest deployment.", "none",
          [P(f"max by (project, environment, service, status) (railway_deployment_status{{{F}}}) == 1",
             instant=True, fmt="table")], links=runbook_links(r.steps("RailwayDeploymentFailed")), w=8),
        S("stat", "CRASHED transitions (30 m)", "How often each service went in or out of CRASHED in the last "
          "30 minutes (the alert's window); RailwayServiceRestarting threshold.", "short",
          [P(f'sum by (project, service, environment) (changes(railway_deployment_status{{{F}, status="CRASHED"}}[30m]))',
             "{{service}} ({{environment}})", instant=True)], th_alert(crash), runbook_links(crash), w=8),
        S("bargauge", "Deployment step p95 (time range)", "Duration of each deployment step.", "s",
          [P(f"histogram_quantile(0.95, sum by (step, le) (increase(railway_deployment_step_duration_seconds_bucket"
             f"{{{F}}}[$__range])))", "{{step}}", instant=True)], w=8),
        S("timeseries", "Deployments finished by status", "Deployments reaching a final state per interval.",
          "short", [P(f"sum by (status) (increase(railway_deployments_total{{{F}}}[$__rate_interval]))", "{{status}}")],
          bars=True, stack=True, w=24),
    )
    b.row("Cost")
    b.add(
        S("stat", "Estimated bill (billing period)", "Railway's estimate of the current period's bill.",
          "currencyUSD", [P('sum by (project) (railway_estimated_cost_dollars{project=~"$project"})', "{{project}}",
                            instant=True)], w=8),
        S("table", "Estimated usage by measurement", "Railway's usage estimate for the period (CPU, memory, disk, "
          "network, backups).", "short",
          [P('sum by (project, measurement) (railway_estimated_usage{project=~"$project"})', instant=True,
             fmt="table")], w=8),
        _ratelimit_panel("railway", "railway-exporter", r.steps("ExporterRateLimitLow"), w=8),
    )
    return b


def vercel(r: Rules) -> Board:
    b = Board(r, "obs-vercel", "Vercel", "Platforms",
              "Vercel projects from the Vercel bridge: latest deployment per target, success ratio, build and "
              "queue times. Web Vitals live in User Activity and Web Vitals (Vercel has no API for them).",
              ["Is the latest production deployment of every project READY?",
               "How often do builds fail, and how long do they build and queue?"],
              ["obs-stack", "vercel", "platform"], time_from="now-24h")
    b.var("project", "Project", "vercel_latest_deployment_state")
    b.var("target", "Target", 'vercel_latest_deployment_state{project=~"$project"}')
    deploy_markers(b, "project", vercel={"environment": "target"})  # a Vercel project is a service
    F = 'project=~"$project", target=~"$target"'
    fail = r.steps("VercelDeploymentFailed")
    slo = r.slo_objectives()["deployments-deployment-success"]
    slo_step = Step("SLODeploymentSuccessBudgetBurn", "high", slo, "<", r.runbook("SLODeploymentSuccessBudgetBurn"))
    b.row("Now")
    b.add(
        S("table", "Latest deployment per project and target", "State of each latest deployment.", "none",
          [P(f"max by (project, target, state) (vercel_latest_deployment_state{{{F}}}) == 1", instant=True,
             fmt="table")], links=runbook_links(fail), w=12),
        S("stat", "Projects whose latest deployment is in ERROR", "Count per target; VercelDeploymentFailed "
          "fires for each (high for production, low for previews).", "short",
          [P(f'count by (target) (max by (project, target) (vercel_latest_deployment_state{{{F}, state="ERROR"}}) == 1) '
             f"or count by (target) (max by (project, target) (vercel_latest_deployment_state{{{F}}})) * 0",
             "{{target}}", instant=True)], th_alert([Step(s.alert, s.severity, 1.0, ">=", s.runbook) for s in fail[-1:]]),
          runbook_links(fail), w=6),
        S("stat", "Success ratio (time range)", "READY / (READY + ERROR) deployments over the range; red below "
          "the deployment SLO objective.", "percentunit",
          [P(f'sum(increase(vercel_deployments_total{{{F}, state="READY"}}[$__range])) / '
             f'(sum(increase(vercel_deployments_total{{{F}, state=~"READY|ERROR"}}[$__range])) > 0)', "success",
             instant=True)], th_floor(slo, slo_step), runbook_links([slo_step]), w=6),
    )
    b.row("Builds")
    b.add(
        S("timeseries", "Deployments finished by state", "Deployments reaching READY, ERROR or CANCELED.",
          "short", [P(f"sum by (state) (increase(vercel_deployments_total{{{F}}}[$__rate_interval]))", "{{state}}")],
          bars=True, stack=True, w=24),
        S("bargauge", "Build time p95 by project (time range)", "Build time, building to ready.", "s",
          [P(f"histogram_quantile(0.95, sum by (project, le) (increase(vercel_deployment_build_duration_seconds_bucket"
             f"{{{F}}}[$__range])))", "{{project}}", instant=True)], w=8),
        S("bargauge", "Queue time p95 by project (time range)", "Time from creation to build start.", "s",
          [P(f"histogram_quantile(0.95, sum by (project, le) (increase(vercel_deployment_queue_duration_seconds_bucket"
             f"{{{F}}}[$__range])))", "{{project}}", instant=True)], w=8),
        _ratelimit_panel("vercel", "vercel-exporter", r.steps("ExporterRateLimitLow"), w=8),
    )
    return b


def github(r: Rules) -> Board:
    b = Board(r, "obs-github", "GitHub Actions", "Platforms",
              "GitHub Actions from the GitHub bridge: latest conclusion per workflow, failure ratio, run, job "
              "and queue times, runs in progress.",
              ["Which workflows are failing now, and is the failure ratio above the alert threshold?",
               "How long do runs and jobs take, and how long do they queue for a runner?"],
              ["obs-stack", "github", "platform"], time_from="now-24h")
    b.var("repo", "Repository", "github_actions_workflow_last_conclusion")
    b.var("workflow", "Workflow", 'github_actions_workflow_last_conclusion{repo=~"$repo"}')
    deploy_markers(b, "repo", github={"workflow": "workflow"})  # a repository is the service of its runs
    F = 'repo=~"$repo", workflow=~"$workflow"'
    gh = r.steps("GitHubWorkflowFailureRateHigh")
    b.row("Now")
    b.add(
        S("table", "Latest conclusion per workflow", "Conclusion of each workflow's latest completed run.",
          "none", [P(f"max by (repo, workflow, conclusion) (github_actions_workflow_last_conclusion{{{F}}}) == 1",
                     instant=True, fmt="table")],
          links=runbook_links(r.steps("GitHubDeployWorkflowFailed") + r.steps("SmokeCheckFailed")), w=12),
        S("stat", "Failure ratio (time range)", "Failed / finished runs; GitHubWorkflowFailureRateHigh threshold "
          "(over 6 h with at least 5 runs).", "percentunit",
          [P(f'sum by (repo) (increase(github_actions_workflow_runs_total{{{F}, conclusion=~"failure|timed_out|'
             f'startup_failure"}}[$__range])) / sum by (repo) (increase(github_actions_workflow_runs_total{{{F}, '
             f'conclusion=~"success|failure|timed_out|startup_failure"}}[$__range]))', "{{repo}}", instant=True)],
          th_alert(gh), runbook_links(gh), w=6),
        S("stat", "Runs in progress or queued", "Runs not yet completed, by status.", "short",
          [P('sum by (status) (github_actions_workflow_runs_active{repo=~"$repo"})', "{{status}}", instant=True)],
          w=6),
    )
    b.row("Runs")
    b.add(
        S("timeseries", "Runs finished by conclusion", "Completed runs per interval.", "short",
          [P(f"sum by (conclusion) (increase(github_actions_workflow_runs_total{{{F}}}[$__rate_interval]))",
             "{{conclusion}}")], bars=True, stack=True),
        S("piechart", "Runs by trigger (time range)", "What started the runs (push, pull_request, schedule...).",
          "short", [P(f"sum by (event) (increase(github_actions_workflow_runs_total{{{F}}}[$__range]))", "{{event}}",
                      instant=True)], w=6),
        S("piechart", "Runs by branch (time range)", "Branches the runs ran on.", "short",
          [P(f"sum by (branch) (increase(github_actions_workflow_runs_total{{{F}}}[$__range]))", "{{branch}}",
             instant=True)], w=6),
    )
    def q(by: str, m: str) -> str:
        return f"histogram_quantile(0.95, sum by ({by}, le) (increase({m}_bucket{{{F}}}[$__range])))"
    b.row("Durations (p95 over the time range)")
    b.add(
        S("bargauge", "Run time p95 by workflow", "Run duration, start to finish.", "s",
          [P(q("workflow", "github_actions_workflow_run_duration_seconds"), "{{workflow}}", instant=True)], w=8),
        S("bargauge", "Job time p95 by job", "Job duration, start to completion.", "s",
          [P(q("job", "github_actions_job_duration_seconds"), "{{job}}", instant=True)], w=8),
        S("bargauge", "Queue time p95 by job", "Wait for a runner, creation to start.", "s",
          [P(q("job", "github_actions_job_queue_seconds"), "{{job}}", instant=True)], w=8),
        _ratelimit_panel("github", "github-exporter", r.steps("ExporterRateLimitLow"), w=24),
    )
    return b


def supabase(r: Rules) -> Board:
    b = Board(r, "obs-supabase", "Supabase", "Platforms",
              "Supabase projects from the Supabase bridge: project status and the health of each service "
              "(db, auth, rest, realtime, storage, pooler). Postgres internals: Database (Supabase).",
              ["Is every Supabase project ACTIVE_HEALTHY and every one of its services healthy?",
               "When did a service become unhealthy, and is the Management API reachable?"],
              ["obs-stack", "supabase", "platform"], time_from="now-6h")
    b.link("Database (Supabase)", dash_url("obs-database"))
    b.var("project", "Project", "supabase_project_status")
    F = 'project=~"$project"'
    down, unhealthy = r.steps("DatabaseDown", severities=["critical"]), r.steps("SupabaseProjectUnhealthy")
    b.row("Now")
    b.add(
        S("table", "Project status", "Current status of each project.", "none",
          [P(f"max by (project, status) (supabase_project_status{{{F}}}) == 1", instant=True, fmt="table")],
          links=runbook_links(unhealthy), w=8, h=7),
        S("stat", "Unhealthy services", "Services reporting unhealthy per project; DatabaseDown pages when it "
          "is `db`.", "short",
          [P(f"sum by (project) (1 - supabase_service_healthy{{{F}}})", "{{project}}", instant=True)],
          th_alert([Step(down[0].alert, down[0].severity, 1.0, ">=", down[0].runbook)]), runbook_links(down),
          w=8, h=7),
        S("table", "Project info", "Region and Postgres version of each project.", "none",
          [P(f"max by (project, region, postgres_version) (supabase_project_info{{{F}}})", instant=True,
             fmt="table")], w=8, h=7),
    )
    b.row("Service health over time")
    b.add(
        S("timeseries", "Service healthy (1) / unhealthy (0)", "Health of each service of each project.", "none",
          [P(f"max by (project, service) (supabase_service_healthy{{{F}}})", "{{project}} {{service}}")],
          th_floor(1, down[0]), runbook_links(down), w=24, minv=0, maxv=1),
        S("timeseries", "Management API requests by endpoint and code", "Requests the bridge makes to the "
          "Supabase Management API.", "reqps",
          [P('sum by (endpoint, code) (rate(supabase_api_requests_total[$__rate_interval]))', "{{endpoint}} {{code}}")]),
        _ratelimit_panel("supabase", "supabase-exporter", r.steps("ExporterRateLimitLow")),
    )
    return b


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
        _ratelimit_panel(BRIDGES, "$job", rl),
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
    return [deployments(r), railway(r), vercel(r), github(r), supabase(r), exporters(r), stack(r)]
