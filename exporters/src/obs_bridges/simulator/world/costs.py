"""What the synthetic world spends: the billing usage of the GitHub organization, the Vercel team and the
Railway projects, as deterministic functions of the seed and the world's time (the clock plus
/_control/advance). The billing APIs (simulator/costs.py, the Railway resolver) read these, so every answer is
consistent with every other, month-to-date figures grow with the world's time and start again at each UTC
month. Spend accrues with a daily rhythm; GitHub and Vercel settle their figures at the hour (their billing
data lags the usage), Railway at the minute. Rates are picked so that the demo stays within the budgets of
prometheus/rules/budgets.yml (a calm world: no budget alert fires by itself)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from obs_bridges.simulator.world.common import noise

DAY = 86400.0
HOUR = 3600.0
AMPLITUDE = 0.4  # the daily swing of spend around its mean


@dataclass(frozen=True)
class GhSku:
    product: str  # as the summary spells it ("Actions"; the bridge lower-cases)
    sku: str  # the summary's spelling; the usage report uses `display`
    display: str
    unit: str
    price: float  # dollars per unit
    per_day: float  # units a day, on average
    included: float  # units a month the plan includes (discounted to zero)
    per_repo: bool  # usage belongs to repositories (Actions), or to the organization (seats)


# Prices are GitHub's published list prices of these SKUs at the time of writing; the quantities are a small
# team's: about $2.5 a day of Actions after the plan's included Linux minutes, plus three Copilot seats.
GH_SKUS = (
    GhSku("Actions", "actions_linux", "Actions Linux", "minutes", 0.008, 250.0, 2000.0, True),
    GhSku("Actions", "actions_windows", "Actions Windows", "minutes", 0.016, 20.0, 0.0, True),
    GhSku("Actions", "actions_macos", "Actions macOS", "minutes", 0.08, 3.0, 0.0, True),
    GhSku("Actions", "actions_storage", "Actions Storage", "GigabyteHours", 0.00034, 48.0, 0.0, True),
    GhSku("Copilot", "copilot_business", "Copilot Business", "UserMonths", 19.0, 0.1, 0.0, False),
)


@dataclass(frozen=True)
class VcService:
    name: str
    category: str
    unit: str
    price: float
    per_day: float  # units a day per project, on average


# About $1.2 a day per project at Vercel's published Pro prices.
VC_SERVICES = (
    VcService("Edge Requests", "Networking", "Requests", 2.0 / 1e6, 300_000.0),
    VcService("Fast Data Transfer", "Networking", "GB", 0.15, 2.0),
    VcService("Function Invocations", "Compute", "Invocations", 0.6 / 1e6, 150_000.0),
    VcService("Fluid Active CPU", "Compute", "Hours", 0.128, 1.5),
)


def month_bounds(ts: float) -> tuple[float, float]:
    d = datetime.fromtimestamp(ts, timezone.utc)
    start = datetime(d.year, d.month, 1, tzinfo=timezone.utc)
    end = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start.timestamp(), end.timestamp()


def accrued(per_day: float, phase: float, a: float, b: float) -> float:
    """Units used from a to b at ``per_day`` on average, busier and quieter through the day: the integral of
    per_day / DAY * (1 + AMPLITUDE sin(2 pi t / DAY + phase)), never negative, additive over intervals."""
    if b <= a:
        return 0.0
    k = 2 * math.pi / DAY
    return per_day / DAY * ((b - a) - AMPLITUDE / k * (math.cos(k * b + phase) - math.cos(k * a + phase)))


def _phase(seed: int, *key) -> float:
    return noise(seed, "cost", *key) * 2 * math.pi


def _weights(seed: int, names: list[str]) -> dict[str, float]:
    w = {n: 0.5 + noise(seed, "cost-share", n) for n in names}
    total = sum(w.values()) or 1.0
    return {n: v / total for n, v in w.items()}


def settled(now: float, step: float = HOUR) -> float:
    """The time a platform's billing figures are complete up to: the last whole ``step``."""
    return math.floor(now / step) * step


# ---------------------------------------------------------------- GitHub

def github_days(world, year: int, month: int, now: float) -> list[dict]:
    """The usage report's items of (year, month) up to now: one per day, SKU and repository (the organization's
    seats: no repository), gross at list price, the plan's included units discounted first come first served."""
    gh, seed = world.github, world.seed
    start, end = month_bounds(datetime(year, month, 1, tzinfo=timezone.utc).timestamp())
    upto = min(end, settled(now))
    shares = _weights(seed, list(gh.repos))
    out = []
    for sku in GH_SKUS:
        left = sku.included
        day = start
        while day < upto:
            q = accrued(sku.per_day, _phase(seed, gh.org, sku.sku), day, min(day + DAY, upto))
            free = min(q, left)
            left -= free
            parts = shares.items() if sku.per_repo else [("", 1.0)]
            for repo, share in parts:
                gross = q * share * sku.price
                disc = free * share * sku.price
                out.append({"date": datetime.fromtimestamp(day, timezone.utc).strftime("%Y-%m-%d"),
                            "product": sku.product, "sku": sku.display, "quantity": round(q * share, 6),
                            "unitType": sku.unit, "pricePerUnit": sku.price, "grossAmount": round(gross, 6),
                            "discountAmount": round(disc, 6), "netAmount": round(gross - disc, 6),
                            "organizationName": gh.org, "repositoryName": repo})
            day += DAY
    return out


def github_summary(world, year: int, month: int, now: float) -> list[dict]:
    """The summary's items: the month so far by product and SKU."""
    gh, seed = world.github, world.seed
    start, end = month_bounds(datetime(year, month, 1, tzinfo=timezone.utc).timestamp())
    upto = min(end, settled(now))
    out = []
    for sku in GH_SKUS:
        q = accrued(sku.per_day, _phase(seed, gh.org, sku.sku), start, upto)
        free = min(q, sku.included)
        if q <= 0:
            continue
        out.append({"product": sku.product, "sku": sku.sku, "unitType": sku.unit, "pricePerUnit": sku.price,
                    "grossQuantity": round(q, 6), "grossAmount": round(q * sku.price, 6),
                    "discountQuantity": round(free, 6), "discountAmount": round(free * sku.price, 6),
                    "netQuantity": round(q - free, 6), "netAmount": round((q - free) * sku.price, 6)})
    return out


# ---------------------------------------------------------------- Vercel

def vercel_charges(world, start: float, end: float, now: float) -> list[dict]:
    """FOCUS charge lines of the days starting in [start, end) up to now: one per day, project and service; the
    current day's lines hold what is settled so far."""
    vc, seed = world.vercel, world.seed
    upto = settled(now)
    day = math.floor(start / DAY) * DAY
    out = []
    while day < min(end, upto):
        if day >= start:
            for pid, pname in vc.projects:
                scale = 0.5 + noise(seed, "cost-share", pid)
                for svc in VC_SERVICES:
                    q = scale * accrued(svc.per_day, _phase(seed, pid, svc.name), day, min(day + DAY, upto))
                    cost = round(q * svc.price, 6)
                    out.append({
                        "BilledCost": cost, "BillingCurrency": "USD", "ChargeCategory": "Usage",
                        "ChargePeriodStart": _iso(day), "ChargePeriodEnd": _iso(day + DAY),
                        "ConsumedQuantity": round(q, 6), "ConsumedUnit": svc.unit, "EffectiveCost": cost,
                        "RegionId": "iad1", "RegionName": "Washington, D.C., USA (East)", "ServiceName": svc.name,
                        "ServiceCategory": svc.category, "ServiceProviderName": "Vercel",
                        "Tags": {"ProjectId": pid, "ProjectName": pname}, "PricingCategory": "Standard",
                        "PricingCurrency": "USD", "PricingQuantity": round(q, 6), "PricingUnit": svc.unit})
        day += DAY
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------- Railway

def railway_to_date(world, project_id: str, measurement: str, now: float) -> float:
    """Usage of the billing period (the UTC month here) so far: the project's estimate for the whole period
    (RailwayWorld.estimated, what estimatedUsage answers) in proportion to the time gone, settled at the minute."""
    start, end = month_bounds(now)
    done = (settled(now, 60.0) - start) / (end - start)
    return round(world.railway.estimated(project_id, measurement) * done, 6)
