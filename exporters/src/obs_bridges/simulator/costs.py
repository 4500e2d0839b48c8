"""The billing APIs of the synthetic world, in their real shapes (numbers from world/costs.py):

* GitHub (under /github): ``GET /organizations/{org}/settings/billing/usage/summary`` (public preview) and
  ``GET /organizations/{org}/settings/billing/usage`` (the usage report), with ``year``, ``month``, ``day``;
  the retired ``/orgs/{org}/settings/billing/actions`` answers 410.
* Vercel: ``GET /vercel/v1/billing/charges?from=&to=&teamId=``, FOCUS charges as JSON lines
  (``application/jsonl``), so its route is raw (server.ROUTES): no ETag and no rate-limit accounting.

A token that starts with ``nobilling`` is valid but lacks the billing permission: 403 with each platform's
error body (GitHub also names the permission in ``X-Accepted-GitHub-Permissions``), like a real token
without the "Administration" organization permission or the billing role."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from obs_bridges.simulator.common import ApiRequest, Reply, parse_iso, q1
from obs_bridges.simulator.faults import SimState
from obs_bridges.simulator.world import costs

GH_DOCS = "https://docs.github.com/rest/billing/usage"
NO_BILLING = "nobilling"
MAX_RANGE_DAYS = 366  # Vercel: "a maximum date range of 1 year"


def _gh_int(q: dict, key: str, lo: int, hi: int, default: int | None) -> int | None:
    raw = q1(q, key)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise Reply(400, {"message": f"Invalid value for {key}", "documentation_url": GH_DOCS,
                          "status": "400"}) from None
    if not lo <= v <= hi:
        raise Reply(400, {"message": f"Invalid value for {key}", "documentation_url": GH_DOCS, "status": "400"})
    return v


def github_billing(state: SimState, req: ApiRequest, parts: list[str], token: str):
    """/organizations/{org}/settings/billing/usage[/summary] and the retired /orgs/{org}/settings/billing/..."""
    w = state.world
    if parts[0] == "orgs":  # the legacy endpoints (actions, packages, shared-storage): shut down
        raise Reply(410, {"message": "This endpoint has been removed. Use the billing usage API instead.",
                          "documentation_url": GH_DOCS, "status": "410"})
    summary = parts[5:] == ["summary"]
    if parts[2:5] != ["settings", "billing", "usage"] or parts[5:] not in ([], ["summary"]) \
            or parts[1].lower() != w.github.org.lower():
        raise Reply(404, {"message": "Not Found", "documentation_url": GH_DOCS, "status": "404"})
    if token.startswith(NO_BILLING):
        raise Reply(403, {"message": "Resource not accessible by personal access token",
                          "documentation_url": GH_DOCS + ("#get-billing-usage-summary-for-an-organization" if summary
                                                          else "#get-billing-usage-report-for-an-organization"),
                          "status": "403"}, {"X-Accepted-GitHub-Permissions": "administration=read"})
    now = w.now()
    today = datetime.fromtimestamp(now, timezone.utc)
    q = req.q
    year = _gh_int(q, "year", 2000, 2100, today.year)
    month = _gh_int(q, "month", 1, 12, today.month if summary else None)
    day = _gh_int(q, "day", 1, 31, None)
    months = [month] if month else list(range(1, 13))
    if summary:
        items = costs.github_summary(w, year, month, now) if day is None else _summary_of_day(w, year, month, day, now)
        for key, field in (("product", "product"), ("sku", "sku")):
            want = q1(q, key)
            if want:
                items = [i for i in items if i[field].lower() == want.lower()]
        if q1(q, "repository"):  # per-repository usage is not kept apart in the summary's model
            items = []
        period = {"year": year, "month": month, **({"day": day} if day else {})}
        return 200, {"timePeriod": period, "organization": w.github.org, "usageItems": items}, {}
    items = [i for m in months for i in costs.github_days(w, year, m, now)]
    if day is not None:
        items = [i for i in items if int(i["date"][8:10]) == day]
    return 200, {"usageItems": items}, {}


def _summary_of_day(w, year: int, month: int, day: int, now: float) -> list[dict]:
    """The summary for one day: the day's report items summed by SKU (its discounts included)."""
    rows: dict[tuple[str, str], dict] = {}
    for i in costs.github_days(w, year, month, now):
        if int(i["date"][8:10]) != day:
            continue
        sku = next(s for s in costs.GH_SKUS if s.display == i["sku"])
        r = rows.setdefault((sku.product, sku.sku), {
            "product": sku.product, "sku": sku.sku, "unitType": sku.unit, "pricePerUnit": sku.price,
            "grossQuantity": 0.0, "grossAmount": 0.0, "discountQuantity": 0.0, "discountAmount": 0.0,
            "netQuantity": 0.0, "netAmount": 0.0})
        r["grossQuantity"] += i["quantity"]
        r["grossAmount"] += i["grossAmount"]
        r["discountAmount"] += i["discountAmount"]
        r["discountQuantity"] += i["discountAmount"] / sku.price
        r["netAmount"] += i["netAmount"]
        r["netQuantity"] += i["netAmount"] / sku.price
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows.values()]


def _vc_error(status: int, code: str, message: str):
    return status, json.dumps({"error": {"code": code, "message": message}}).encode(), \
        {"Content-Type": "application/json; charset=utf-8"}


def vercel_charges(state: SimState, req: ApiRequest):
    """GET /vercel/v1/billing/charges: (status, body bytes, headers), a raw route."""
    w = state.world
    auth = req.headers.get("Authorization", "")
    tok = auth[7:].strip() if auth.startswith("Bearer ") else ""
    if not tok or tok.startswith(("invalid", "bad")):
        return _vc_error(403, "forbidden", "Not authorized")
    if req.path not in ("/charges", "/charges/") or req.method not in ("GET", "HEAD"):
        return _vc_error(404, "not_found", "The requested path was not found")
    team = q1(req.q, "teamId")
    if team is not None and team != w.vercel.team:
        return _vc_error(403, "forbidden", "Not authorized")
    if tok.startswith(NO_BILLING):
        return _vc_error(403, "forbidden", "You don't have permission to view the billing charges of this team.")
    try:
        start, end = parse_iso(q1(req.q, "from") or ""), parse_iso(q1(req.q, "to") or "")
    except ValueError:
        return _vc_error(400, "bad_request", "`from` and `to` must be ISO 8601 date-time strings")
    if end <= start or end - start > MAX_RANGE_DAYS * costs.DAY:
        return _vc_error(400, "bad_request", "`to` must be after `from`, at most a year later")
    lines = [] if team is None else costs.vercel_charges(w, start, end, w.now())  # the personal scope: nothing
    body = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines).encode()
    return 200, body, {"Content-Type": "application/jsonl"}
