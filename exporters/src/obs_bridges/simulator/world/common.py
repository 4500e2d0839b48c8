"""What every platform of the synthetic world shares: the default outcome rates and the seeded helpers."""

from __future__ import annotations

import random
import zlib

# Default outcome rates: a calm, healthy demo world. Everything that the alert rules treat as critical or
# high (a failed Railway deployment, a failed Vercel production deployment, a failed deploy workflow, the
# Supabase database down) does not happen by itself; scenarios (/_control/scenario, /_control/inject,
# /_control/supabase/project) or the SIM_* knobs below raise them. What stays is ordinary noise that at
# most raises a medium or low alert: CI runs and preview deployments that fail now and then, short health
# blips of the non-database Supabase services.
DEFAULT_RATES = {
    "github_failure": 0.06,          # CI / Nightly runs that fail (GitHubWorkflowFailureRateHigh is medium)
    "github_deploy_failure": 0.0,    # deploy/release workflows: a failure is GitHubDeployWorkflowFailed (high)
    "github_smoke_failure": 0.0,     # the post-deploy "Smoke tests" workflow: a failure is SmokeCheckFailed (high)
    "vercel_preview_error": 0.03,    # preview deployments in ERROR (low alert)
    "vercel_production_error": 0.0,  # production deployments in ERROR (VercelDeploymentFailed, high)
    "railway_failure": 0.0,          # Railway builds that fail (RailwayDeploymentFailed, high)
    "railway_crash": 0.0,            # Railway deployments that crash after going live (same alert)
    "supabase_incident": 0.0,        # 5-minute windows a Supabase service (db included) is UNHEALTHY
    "supabase_minor_incident": 0.0,  # ... of the non-database services only (SupabaseServiceUnhealthy: high/critical)
}
WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
         "kestrel", "lumen", "maple", "nova", "onyx", "pine", "quartz", "river", "sage", "tundra"]


def noise(*key) -> float:
    """Deterministic pseudo-random number in [0, 1) from a key (independent of PYTHONHASHSEED)."""
    return (zlib.crc32("|".join(map(str, key)).encode()) & 0xFFFFFFFF) / 2**32


def pick(rng: random.Random, weighted):
    total = sum(w for _, w in weighted)
    x = rng.uniform(0, total)
    for v, w in weighted:
        x -= w
        if x <= 0:
            return v
    return weighted[-1][0]


def name(i: int, prefix: str = "") -> str:
    return f"{prefix}{WORDS[i % len(WORDS)]}" + (f"-{i // len(WORDS)}" if i >= len(WORDS) else "")
