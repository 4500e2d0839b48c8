"""Vercel billing charges of the team: month-to-date dollars by service and by project.

``GET /v1/billing/charges?from=&to=&teamId=`` (vercel.com/docs/rest-api/billing/list-focus-billing-charges)
streams the team's charges in FOCUS v1.3 as JSON lines (``application/jsonl``), at 1-day granularity, one line
per day, service and project: ``{BilledCost, BillingCurrency, ChargeCategory, ChargePeriodStart,
ChargePeriodEnd, ConsumedQuantity, ConsumedUnit, EffectiveCost, ServiceName, ServiceCategory,
ServiceProviderName, Tags: {ProjectId, ProjectName}, PricingCategory, PricingCurrency, PricingQuantity,
PricingUnit, RegionId?, RegionName?}``. The token's user needs the Owner, Member, Developer, Security, Billing
or Enterprise Viewer role on the team. The month's days are kept summed per day: a poll re-reads the last two
days only, the whole month once a day. Labels are bounded: services are Vercel's product names (at most
MAX_SERVICES), projects are the bridge's own (VERCEL_PROJECTS), anything else is "other"."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import core, log
from obs_bridges.httpclient import ApiClient, ApiError, limits
from obs_bridges.parsing import NAME_LABEL_MAX, ParseError, iso, num, obj, s, to_iso

CHARGES_PATH = "/v1/billing/charges"
# Distinct service labels kept (the costliest); Vercel bills a few dozen products, so more means a changed API:
# the rest is summed as service="other".
MAX_SERVICES = 50
NO_PROJECT = "none"  # a team-level charge (no project in its Tags)
ROLES = "the Owner, Member, Developer, Security, Billing or Enterprise Viewer role on the team"
DAY = 86400.0
# Every poll re-reads today and yesterday (charges of a day settle over it); the whole month is re-read once a
# day (late corrections of older days) in requests of at most CHUNK_DAYS days, so that no answer grows with the
# month: a team of 100 projects x 30 services answers about 1.4 MB a day of lines.
REFRESH_DAYS = 2
FULL_REFRESH_SECONDS = 86400.0
CHUNK_DAYS = 7


@dataclass(frozen=True)
class Charge:
    """One FOCUS line: its billed dollars, when its charge period starts, the service and the project."""

    start: float
    cost: float
    currency: str
    service: str
    project_id: str | None
    project_name: str | None


def parse_charges(body: bytes) -> list[Charge]:
    """The JSON lines of a charges response (blank lines skipped); any other malformed line is a ParseError."""
    out = []
    for n, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            x = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ParseError(f"vercel billing charges: line {n} is not JSON") from None
        x = obj(x, f"charge line {n}")
        tags = x.get("Tags")
        tags = obj(tags, "Tags") if tags is not None else {}
        out.append(Charge(
            start=iso(x.get("ChargePeriodStart"), "ChargePeriodStart", optional=False),
            cost=num(x.get("BilledCost"), "BilledCost"),
            currency=(s(x.get("BillingCurrency"), "BillingCurrency", optional=True) or "USD").upper(),
            service=(s(x.get("ServiceName"), "ServiceName", optional=True) or "").strip()[:NAME_LABEL_MAX] or "unknown",
            project_id=s(tags.get("ProjectId"), "Tags.ProjectId", optional=True),
            project_name=s(tags.get("ProjectName"), "Tags.ProjectName", optional=True)))
    return out


def month_bounds(ts: float) -> tuple[float, float]:
    """The UTC calendar month around ``ts``: [start, end)."""
    d = datetime.fromtimestamp(ts, timezone.utc)
    start = datetime(d.year, d.month, 1, tzinfo=timezone.utc)
    end = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=timezone.utc)
    return start.timestamp(), end.timestamp()


@dataclass
class DaySums:
    """One UTC day's dollars by service and by project (before the label bounds), and its non-USD lines."""

    service: dict[str, float]
    project: dict[str, float]
    foreign: int = 0


def by_day(charges: list[Charge], start: float, end: float, projects: dict[str, str],
           allow_list: bool = False) -> dict[float, DaySums]:
    """The charges whose period starts in [start, end), summed per UTC day by service and project
    (``projects``: the bridge's id -> name; a project it does not poll is "other", a charge of no project
    "none"; with an allow-list (VERCEL_PROJECTS) only its projects are named, the rest stays in the services'
    sums). Lines in another currency than USD are counted, not added (Vercel bills in US dollars)."""
    names = set(projects.values())
    out: dict[float, DaySums] = {}
    for c in charges:
        if not start <= c.start < end:
            continue
        d = out.setdefault(c.start // DAY * DAY, DaySums({}, {}))
        if c.currency != "USD":
            d.foreign += 1
            continue
        d.service[c.service] = d.service.get(c.service, 0.0) + c.cost
        name = c.project_name or projects.get(c.project_id or "")
        proj = NO_PROJECT if not (c.project_id or c.project_name) else (name if name in names else "other")
        if not allow_list or proj in names:
            d.project[proj] = d.project.get(proj, 0.0) + c.cost
    return out


def totals(days: dict[float, DaySums]) -> tuple[dict[str, float], dict[str, float], int]:
    """The month's dollars by service (at most MAX_SERVICES labels, the rest "other") and by project."""
    service: dict[str, float] = {}
    project: dict[str, float] = {}
    for d in days.values():
        for k, v in d.service.items():
            service[k] = service.get(k, 0.0) + v
        for k, v in d.project.items():
            project[k] = project.get(k, 0.0) + v
    kept = set(sorted(service, key=lambda k: -service[k])[:MAX_SERVICES])
    bounded: dict[str, float] = {}
    for k, v in service.items():
        key = k if k in kept else "other"
        bounded[key] = bounded.get(key, 0.0) + v
    return ({k: round(v, 6) for k, v in sorted(bounded.items())}, {k: round(v, 6) for k, v in sorted(project.items())},
            sum(d.foreign for d in days.values()))


def ranges(start: float, end: float, step_days: int) -> list[tuple[float, float]]:
    out, a = [], start
    while a < end:
        out.append((a, min(end, a + step_days * DAY)))
        a += step_days * DAY
    return out


def explain(team: str | None, e: ApiError) -> ApiError:
    where = f"team {team}" if team else "the personal account (VERCEL_TEAM_ID is unset)"
    if e.kind == "auth" and e.status == 403:
        return ApiError("auth", f"Vercel billing charges of {where}: HTTP 403, the token may not read them; its "
                        f"user needs {ROLES} (VERCEL_TOKEN; or set VERCEL_BILLING=false)", 403)
    if e.status == 404:
        return ApiError("http", f"Vercel billing charges of {where}: HTTP 404, the API offers no charges for this "
                        "account (set VERCEL_BILLING=false to stop asking)", 404)
    return e


class UsagePoller:
    """The ``billing`` upstream of the Vercel bridge and the collector of its gauges."""

    def __init__(self, exporter):
        self.exp = exporter
        st = exporter.settings
        self.client = ApiClient("vercel", st.api_url, exporter.selfm, st.http_timeout,
                                auth=lambda: {"Authorization": f"Bearer {exporter.token()}"}, **limits(st),
                                clock=exporter.clock)
        self.by_service: dict[str, float] = {}
        self.by_project: dict[str, float] = {}
        self.days: dict[float, DaySums] = {}  # the month's days read so far
        self.month: float | None = None  # the start of the month they belong to
        self.full_at = float("-inf")  # when the whole month was last read
        self._warned_currency = False
        self._lock = threading.Lock()

    def poll(self) -> None:
        exp = self.exp
        exp.token()
        if not exp.projects:  # project labels need the bridge's projects (its own upstream may not have run yet)
            exp.poll_projects(self.client)
        now = exp.clock()
        start, end = month_bounds(now)
        today = now // DAY * DAY
        to = min(end, today + DAY)  # `to` is exclusive and charges are daily: up to the end of today
        full = self.month != start or now - self.full_at >= FULL_REFRESH_SECONDS
        if full:
            days, spans = {}, ranges(start, to, CHUNK_DAYS)
        else:
            days, spans = dict(self.days), [(max(start, today - (REFRESH_DAYS - 1) * DAY), to)]
        for a, b in spans:
            try:
                _, body = self.client.request("GET", CHARGES_PATH, "billing_charges",
                                              params=exp._params(**{"from": to_iso(a), "to": to_iso(b)}))
            except ApiError as e:
                raise explain(exp.cfg.team_id, e) from None
            for d in [d for d in days if a <= d < b]:  # a day without lines now has no charges
                del days[d]
            days.update(by_day(parse_charges(body), a, b, dict(exp.projects), bool(exp.cfg.projects)))
        by_service, by_project, foreign = totals(days)
        if foreign and not self._warned_currency:
            self._warned_currency = True
            exp.log.warning("billing charges in a currency other than USD are left out", extra=log.kv(lines=foreign))
        with self._lock:
            self.days, self.month = days, start
            if full:
                self.full_at = now
            self.by_service, self.by_project = by_service, by_project

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            svc, proj = dict(self.by_service), dict(self.by_project)
        g = GaugeMetricFamily("vercel_billing_cost_dollars", "Vercel charges of the month so far (FOCUS BilledCost, "
                              "US dollars), by service.", labels=["service"])
        for k, v in svc.items():
            g.add_metric([k], v)
        yield g
        g = GaugeMetricFamily("vercel_billing_project_cost_dollars", "Vercel charges of the month so far (FOCUS "
                              "BilledCost, US dollars), by project (none: team-level charges).", labels=["project"])
        for k, v in proj.items():
            g.add_metric([k], v)
        yield g


def attach(exporter) -> UsagePoller | None:
    """Adds the ``billing`` upstream (VERCEL_BILLING_INTERVAL_SECONDS) unless VERCEL_BILLING=false."""
    cfg = exporter.cfg
    if not cfg.billing:
        return None
    poller = UsagePoller(exporter)
    exporter.registry.register(poller)
    exporter.add_upstream(core.Upstream("billing", cfg.billing_interval, poller.poll))
    return poller
