"""GitHub billing usage of the configured organizations: month-to-date minutes and dollars by product and SKU.

GitHub's enhanced billing platform (docs.github.com/rest/billing/usage):

* ``GET /organizations/{org}/settings/billing/usage/summary?year=&month=`` (public preview): one item per
  product and SKU, ``{timePeriod, organization, usageItems: [{product, sku, unitType, pricePerUnit,
  grossQuantity, grossAmount, discountQuantity, discountAmount, netQuantity, netAmount}]}``. Read first.
* ``GET /organizations/{org}/settings/billing/usage?year=&month=`` (generally available): one item per day,
  SKU and repository, ``{usageItems: [{date, product, sku, quantity, unitType, pricePerUnit, grossAmount,
  discountAmount, netAmount, organizationName, repositoryName}]}``. Read when the summary answers 404 (a
  preview can be withdrawn), summed here by product and SKU.

Both need a token with the "Administration" organization permission (read) (fine-grained token or GitHub
App), or a classic token of an organization owner or billing manager. The legacy
``/orgs/{org}/settings/billing/actions`` answers 410 since 2025-09 and is never called. Labels are bounded:
the organizations come from the settings, products and SKUs are GitHub's short catalogue (at most MAX_SKUS
per organization), and repositories or workflows are never labels (the usage report's per-repository rows
are summed)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from obs_bridges import core, log
from obs_bridges.httpclient import ApiClient, ApiError, decode_json
from obs_bridges.parsing import NAME_LABEL_MAX, ParseError, iso, lst, num, obj, s

SUMMARY_PATH = "/organizations/{org}/settings/billing/usage/summary"
REPORT_PATH = "/organizations/{org}/settings/billing/usage"
# Distinct (product, SKU) label pairs kept per organization; GitHub's catalogue has a few dozen, so more means a
# changed API: the rest is summed under product="other", sku="other" (bounded series, nothing lost in the total).
MAX_SKUS = 100
PERMISSION = ('the "Administration" organization permission (read) for a fine-grained token or GitHub App, or a '
              "classic token whose owner is an organization owner or billing manager")


@dataclass(frozen=True)
class SkuUsage:
    """One product and SKU of a month: quantity by unit (GitHub's gross quantity: included minutes too), and
    dollars before (gross) and after (net, what is billed) discounts such as the plan's included minutes."""

    product: str
    sku: str
    quantity: tuple[tuple[str, float], ...]  # (unit, quantity), sorted by unit
    gross: float
    net: float


def label(raw: str) -> str:
    """A product or SKU as a label value: "Actions Linux" and "actions_linux" (the two endpoints spell SKUs
    differently) are both "actions_linux"."""
    return re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")[:NAME_LABEL_MAX] or "unknown"


def month_of(ts: float) -> tuple[int, int]:
    d = datetime.fromtimestamp(ts, timezone.utc)
    return d.year, d.month


class _Sums:
    """Sums items by (product, SKU), at most MAX_SKUS pairs."""

    def __init__(self):
        self.rows: dict[tuple[str, str], list] = {}

    def add(self, product: str, sku: str, unit: str, quantity: float, gross: float, net: float) -> None:
        key = (label(product), label(sku))
        if key not in self.rows and len(self.rows) >= MAX_SKUS:
            key = ("other", "other")
        row = self.rows.setdefault(key, [{}, 0.0, 0.0])
        u = label(unit) if unit else "unknown"
        row[0][u] = row[0].get(u, 0.0) + quantity
        row[1] += gross
        row[2] += net

    def result(self) -> dict[tuple[str, str], SkuUsage]:
        return {k: SkuUsage(k[0], k[1], tuple(sorted(q.items())), round(g, 6), round(n, 6))
                for k, (q, g, n) in sorted(self.rows.items())}


def _items(data: Any, what: str) -> list:
    return lst(obj(data, what).get("usageItems"), f"{what}.usageItems")


def parse_summary(data: Any, year: int, month: int) -> dict[tuple[str, str], SkuUsage]:
    """The summary endpoint's answer for (year, month). A timePeriod naming another year or month is a
    ParseError: its numbers would be another period's."""
    d = obj(data, "billing usage summary")
    tp = obj(d.get("timePeriod"), "timePeriod")
    if num(tp.get("year"), "timePeriod.year") != year or num(tp.get("month"), "timePeriod.month",
                                                              optional=True) not in (None, month):
        raise ParseError(f"billing usage summary is for {tp.get('year')}-{tp.get('month')}, not {year}-{month}")
    sums = _Sums()
    for i, x in enumerate(_items(d, "billing usage summary")):
        x = obj(x, f"usageItems[{i}]")
        net = num(x.get("netAmount"), "netAmount")
        gross = num(x.get("grossAmount"), "grossAmount", optional=True)
        q = num(x.get("grossQuantity", x.get("quantity")), "grossQuantity", optional=True)
        sums.add(s(x.get("product"), "product"), s(x.get("sku"), "sku"),
                 s(x.get("unitType"), "unitType", optional=True) or "", q or 0.0,
                 net if gross is None else gross, net)
    return sums.result()


def parse_report(data: Any, year: int, month: int) -> dict[tuple[str, str], SkuUsage]:
    """The usage report's per-day, per-repository items of (year, month), summed by product and SKU (an item
    dated in another month is left out; an undated one counts, as the month was asked for)."""
    sums = _Sums()
    for i, x in enumerate(_items(data, "billing usage report")):
        x = obj(x, f"usageItems[{i}]")
        when = iso(x.get("date"), "usageItems.date")
        if when is not None and month_of(when) != (year, month):
            continue
        net = num(x.get("netAmount"), "netAmount")
        gross = num(x.get("grossAmount"), "grossAmount", optional=True)
        sums.add(s(x.get("product"), "product"), s(x.get("sku"), "sku"),
                 s(x.get("unitType"), "unitType", optional=True) or "",
                 num(x.get("quantity"), "quantity", optional=True) or 0.0, net if gross is None else gross, net)
    return sums.result()


def explain(org: str, e: ApiError) -> ApiError:
    """A failure that names what to fix: the permission on a 403, what a 404 can mean."""
    if e.kind == "auth" and e.status == 403:
        return ApiError("auth", f"GitHub billing usage of organization {org}: HTTP 403, the token may not read it; "
                        f"it needs {PERMISSION} (GITHUB_TOKEN; or set GITHUB_BILLING=false)", 403)
    if e.status == 404:
        return ApiError("http", f"GitHub billing usage of organization {org}: HTTP 404, not an organization on "
                        "GitHub's billing platform, or a fine-grained token without access to it (it needs "
                        f"{PERMISSION}); GITHUB_BILLING_ORGANIZATIONS names the organizations", 404)
    return e


class BillingPoller:
    """The ``billing`` upstream of the GitHub bridge and the collector of its gauges."""

    def __init__(self, exporter, orgs: tuple[str, ...]):
        self.exp = exporter
        self.orgs = orgs
        self.client: ApiClient = exporter._client()
        self.mode: dict[str, str] = {}  # org -> "report" once its summary answered 404
        self.usage: dict[str, tuple[tuple[int, int], dict[tuple[str, str], SkuUsage]]] = {}
        self._lock = threading.Lock()

    def _get(self, path: str, endpoint: str, year: int, month: int) -> Any:
        _, body = self.client.request("GET", path, endpoint, params={"year": year, "month": month},
                                      conditional=True)
        return decode_json(body, "github", endpoint)

    def org_month(self, org: str, year: int, month: int) -> dict[tuple[str, str], SkuUsage]:
        if self.mode.get(org) != "report":
            try:
                return parse_summary(self._get(SUMMARY_PATH.format(org=org), "billing_usage_summary", year, month),
                                     year, month)
            except ApiError as e:
                if e.status != 404:
                    raise
                self.mode[org] = "report"
                self.exp.log.info("the billing usage summary (a public preview) answered 404; reading the usage "
                                  "report instead", extra=log.kv(org=org))
        return parse_report(self._get(REPORT_PATH.format(org=org), "billing_usage_report", year, month), year, month)

    def poll(self) -> None:
        self.exp.token()
        period = month_of(self.exp.clock())
        fresh, errors = {}, []
        for org in self.orgs:
            try:
                fresh[org] = (period, self.org_month(org, *period))
            except ApiError as e:
                if e.kind in ("ratelimit", "config", "token_unreadable") or e.status == 401:
                    raise
                errors.append(explain(org, e))
        with self._lock:
            # an organization that failed keeps its last values, unless they are of an earlier month
            kept = {o: v for o, v in self.usage.items() if o not in fresh and v[0] == period}
            self.usage = {**kept, **fresh}
        if errors:
            first = errors[0]
            more = f" ({len(errors)} of {len(self.orgs)} organizations failed)" if len(errors) > 1 else ""
            raise ApiError(first.kind, f"{first}{more}", first.status, first.retry_after)

    def describe(self):
        return []

    def collect(self):
        with self._lock:
            usage = dict(self.usage)
        net = GaugeMetricFamily("github_billing_cost_dollars", "GitHub billing usage of the month so far in "
                                "dollars after discounts (what is billed), by product and SKU.",
                                labels=["org", "product", "sku"])
        gross = GaugeMetricFamily("github_billing_gross_cost_dollars", "GitHub billing usage of the month so far "
                                  "in dollars before discounts (included minutes count at list price).",
                                  labels=["org", "product", "sku"])
        qty = GaugeMetricFamily("github_billing_quantity", "GitHub billing usage of the month so far in the SKU's "
                                "unit (minutes, gigabytehours ...), included minutes too.",
                                labels=["org", "product", "sku", "unit"])
        for org, (_, items) in sorted(usage.items()):
            for (product, sku), u in items.items():
                net.add_metric([org, product, sku], u.net)
                gross.add_metric([org, product, sku], u.gross)
                for unit, q in u.quantity:
                    qty.add_metric([org, product, sku, unit], q)
        yield net
        yield gross
        yield qty


def attach(exporter) -> BillingPoller | None:
    """Adds the ``billing`` upstream (GITHUB_BILLING_INTERVAL_SECONDS) for the settings' billing organizations;
    none (GITHUB_BILLING=false, or no organization configured): nothing is polled."""
    cfg = exporter.cfg
    if not cfg.billing_orgs:
        return None
    poller = BillingPoller(exporter, cfg.billing_orgs)
    exporter.registry.register(poller)
    exporter.add_upstream(core.Upstream("billing", cfg.billing_interval, poller.poll))
    return poller
