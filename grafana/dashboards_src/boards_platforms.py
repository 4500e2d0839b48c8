"""Platform dashboards: Deployment Health across Railway, Vercel and GitHub Actions (docs/dashboards.md) and one
dashboard per platform bridge (Railway, Vercel, GitHub Actions, Supabase). The bridges' own health and Stack
Self-Monitoring are in boards_stack.py. Metric names: exporters/ (obs_bridges)."""
from __future__ import annotations

from lib import Board, P, PanelSpec as S, dash_url, runbook_links, th_alert, th_floor, th_static
from markers import deploy_markers
from rules import Rules, Step

def ratelimit_panel(platform_re: str, job_re: str, step: list[Step], w: int = 12) -> S:
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
        ratelimit_panel("railway", "railway-exporter", r.steps("ExporterRateLimitLow"), w=8),
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
        ratelimit_panel("vercel", "vercel-exporter", r.steps("ExporterRateLimitLow"), w=8),
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
        ratelimit_panel("github", "github-exporter", r.steps("ExporterRateLimitLow"), w=24),
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
        ratelimit_panel("supabase", "supabase-exporter", r.steps("ExporterRateLimitLow")),
    )
    return b


def all_boards(r: Rules) -> list[Board]:
    return [deployments(r), railway(r), vercel(r), github(r), supabase(r)]
