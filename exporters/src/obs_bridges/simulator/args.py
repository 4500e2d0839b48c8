"""The simulator's command-line flags (with their SIM_* environment defaults) and the World they build."""

from __future__ import annotations

from obs_bridges.simulator.drains import drain_target
from obs_bridges.simulator.webhooks import WebhookTarget
from obs_bridges.simulator.world import DEFAULT_RATES, World


def add_world_args(p, env) -> None:
    g = lambda k, d: env.get(k, d)  # noqa: E731
    p.add_argument("--seed", type=int, default=int(g("SIM_SEED", "42")))
    p.add_argument("--github-repos", type=int, default=int(g("SIM_GITHUB_REPOS", "3")))
    p.add_argument("--vercel-projects", type=int, default=int(g("SIM_VERCEL_PROJECTS", "3")))
    p.add_argument("--railway-projects", type=int, default=int(g("SIM_RAILWAY_PROJECTS", "2")))
    p.add_argument("--supabase-projects", type=int, default=int(g("SIM_SUPABASE_PROJECTS", "2")))
    p.add_argument("--history-hours", type=float, default=float(g("SIM_HISTORY_HOURS", "6")))
    p.add_argument("--github-rate", type=float, default=float(g("SIM_GITHUB_RUNS_PER_REPO_HOUR", "2")),
                   help="new workflow runs per repository per hour")
    p.add_argument("--vercel-rate", type=float, default=float(g("SIM_VERCEL_DEPLOYS_PER_PROJECT_HOUR", "2")))
    p.add_argument("--railway-rate", type=float, default=float(g("SIM_RAILWAY_DEPLOYS_PER_SERVICE_HOUR", "1")))
    p.add_argument("--time-scale", type=float, default=float(g("SIM_TIME_SCALE", "1")),
                   help="multiply every simulated duration (0.1 = ten times faster)")
    # Outcome rates (0..1). The defaults make a calm world: nothing critical or high fires by itself
    # (world.DEFAULT_RATES says which alert each one feeds); raise them to see incidents without /_control.
    rate = lambda flag, var, key, what: p.add_argument(  # noqa: E731
        flag, type=float, default=float(g(var, str(DEFAULT_RATES[key]))), help=f"{what} (env {var})")
    rate("--supabase-incidents", "SIM_SUPABASE_INCIDENT_RATE", "supabase_incident",
         "share of 5-minute windows each Supabase service, the database included, is UNHEALTHY")
    rate("--supabase-minor-incidents", "SIM_SUPABASE_MINOR_INCIDENT_RATE", "supabase_minor_incident",
         "same, for the non-database services only")
    rate("--github-failure-rate", "SIM_GITHUB_FAILURE_RATE", "github_failure", "share of CI runs that fail")
    rate("--github-deploy-failure-rate", "SIM_GITHUB_DEPLOY_FAILURE_RATE", "github_deploy_failure",
         "share of deploy/release workflow runs that fail")
    rate("--github-smoke-failure-rate", "SIM_GITHUB_SMOKE_FAILURE_RATE", "github_smoke_failure",
         "share of the post-deploy smoke-test runs that fail")
    rate("--vercel-preview-error-rate", "SIM_VERCEL_PREVIEW_ERROR_RATE", "vercel_preview_error",
         "share of preview deployments that end in ERROR")
    rate("--vercel-production-error-rate", "SIM_VERCEL_PRODUCTION_ERROR_RATE", "vercel_production_error",
         "share of production deployments that end in ERROR")
    rate("--railway-failure-rate", "SIM_RAILWAY_FAILURE_RATE", "railway_failure",
         "share of Railway deployments whose build fails")
    rate("--railway-crash-rate", "SIM_RAILWAY_CRASH_RATE", "railway_crash",
         "share of Railway deployments that crash after going live")
    p.add_argument("--prometheus-dir", default=g("SIM_PROMETHEUS_DIR", ""),
                   help="write the Prometheus file_sd targets of the Supabase metrics endpoint and its service-role "
                        "key here at start (docker-compose.yml's demo scrape job; env SIM_PROMETHEUS_DIR)")
    p.add_argument("--github-webhook-url", default=g("SIM_GITHUB_WEBHOOK_URL", ""),
                   help="deliver GitHub workflow_run/workflow_job webhooks here, e.g. http://127.0.0.1:9605/webhook "
                        "(env SIM_GITHUB_WEBHOOK_URL; unset: no deliveries)")
    p.add_argument("--github-webhook-secret-file", default=g("SIM_GITHUB_WEBHOOK_SECRET_FILE", ""),
                   help="write the random per-start webhook secret here for the receiver (env "
                        "SIM_GITHUB_WEBHOOK_SECRET_FILE; required with --github-webhook-url)")
    p.add_argument("--github-webhook-redeliver-rate", type=float,
                   default=float(g("SIM_GITHUB_WEBHOOK_REDELIVER_RATE", "0.05")),
                   help="share of deliveries GitHub sends again under the same X-GitHub-Delivery")
    p.add_argument("--github-webhook-reorder-rate", type=float,
                   default=float(g("SIM_GITHUB_WEBHOOK_REORDER_RATE", "0.1")),
                   help="share of runs whose in_progress delivery arrives after their completed one")
    # Platform drains pushed into the ingest (drains.py says what and how).
    p.add_argument("--drains-url", default=g("SIM_INGEST_URL", ""),
                   help="push Vercel and Supabase drains to this ingest, e.g. http://127.0.0.1:9610 (env "
                        "SIM_INGEST_URL; unset: no drains)")
    p.add_argument("--drains-secret-dir", default=g("SIM_DRAIN_DEMO_DIR", ""),
                   help="write the per-start Vercel drain secrets and Supabase drain tokens here for the ingest "
                        "(env SIM_DRAIN_DEMO_DIR; required with --drains-url)")
    p.add_argument("--drains-interval", type=float, default=float(g("SIM_DRAIN_INTERVAL_SECONDS", "10")),
                   help="seconds between two pushes of each drain")
    p.add_argument("--drains-batch", type=int, default=int(g("SIM_DRAIN_BATCH_RECORDS", "20")),
                   help="records per push")
    p.add_argument("--drains", default=g("SIM_DRAINS", "vercel-logs,speed-insights,supabase-otlp,supabase-loki"),
                   help="which drains to push, comma-separated (env SIM_DRAINS)")


def world_from_args(a, **world_kw) -> World:
    """world_kw: more World arguments (clock=... for a simulated clock)."""
    for k in ("github_repos", "vercel_projects", "railway_projects", "supabase_projects"):
        if not 0 <= getattr(a, k) <= 1000:
            raise ValueError(f"--{k.replace('_', '-')} must be between 0 and 1000")
    rates = {"supabase_incident": a.supabase_incidents, "supabase_minor_incident": a.supabase_minor_incidents,
             "github_failure": a.github_failure_rate, "github_deploy_failure": a.github_deploy_failure_rate,
             "github_smoke_failure": a.github_smoke_failure_rate,
             "vercel_preview_error": a.vercel_preview_error_rate,
             "vercel_production_error": a.vercel_production_error_rate,
             "railway_failure": a.railway_failure_rate, "railway_crash": a.railway_crash_rate}
    bad = [k for k, v in rates.items() if not 0 <= v <= 1]
    if bad:
        raise ValueError(f"outcome rates must be between 0 and 1: {bad}")
    if a.railway_failure_rate + a.railway_crash_rate > 1:
        raise ValueError("--railway-failure-rate + --railway-crash-rate must not exceed 1")
    w = World(seed=a.seed, github_repos=a.github_repos, vercel_projects=a.vercel_projects,
              railway_projects=a.railway_projects, supabase_projects=a.supabase_projects,
              history_hours=a.history_hours, gh_rate=a.github_rate, vc_rate=a.vercel_rate, rw_rate=a.railway_rate,
              time_scale=a.time_scale, outcome_rates=rates, **world_kw)
    w.prometheus_dir = a.prometheus_dir.strip() or None
    w.github_webhook = webhook_target(a)
    w.drains = drain_target(a.drains_url, a.drains_secret_dir, a.drains_interval, a.drains_batch, a.drains)
    return w


def webhook_target(a) -> WebhookTarget | None:
    url, secret_file = a.github_webhook_url.strip(), a.github_webhook_secret_file.strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--github-webhook-url must be an http(s) URL, got {url[:80]!r}")
    if not secret_file:
        raise ValueError("--github-webhook-url needs --github-webhook-secret-file (SIM_GITHUB_WEBHOOK_SECRET_FILE): "
                         "where the random per-start secret is written for the receiver")
    for name in ("redeliver", "reorder"):
        if not 0 <= getattr(a, f"github_webhook_{name}_rate") <= 1:
            raise ValueError(f"--github-webhook-{name}-rate must be between 0 and 1")
    return WebhookTarget(url, secret_file, a.github_webhook_redeliver_rate, a.github_webhook_reorder_rate)
