"""The platform part of the Cost dashboard (obs-cost, boards_apps.cost): Railway, GitHub Actions, Vercel and
LLM/API spend this month from the recording rules of prometheus/rules/alerts-cost.yml and the budgets of
prometheus/rules/budgets.yml, then what each platform's bill is made of (the bridges' billing gauges)."""
from __future__ import annotations

from lib import Board, P, PanelSpec as S, runbook_links, th_alert
from rules import Rules, Step


def platform_costs(r: Rules, b: Board) -> None:
    """This month on every platform side by side and in total (prometheus/rules/alerts-cost.yml), against the
    budgets of prometheus/rules/budgets.yml, then what each platform's bill is made of (the bridges)."""
    proj = Step("SpendProjectedOverMonthlyBudget", r.severity("SpendProjectedOverMonthlyBudget"),
                r.factor("SpendProjectedOverMonthlyBudget", "platform:cost_budget_usd:per_month"), ">",
                r.runbook("SpendProjectedOverMonthlyBudget"))
    day = Step("PlatformSpendOverDailyBudget", r.severity("PlatformSpendOverDailyBudget"),
               r.factor("PlatformSpendOverDailyBudget", "platform:cost_budget_usd:per_day"), ">",
               r.runbook("PlatformSpendOverDailyBudget"))
    budgets = ("Budgets (prometheus/rules/budgets.yml)",
               "https://github.com/obs-stack/obs-stack/blob/main/prometheus/rules/budgets.yml")
    b.row("This month: every platform and the total")
    b.add(
        S("stat", "This month, all platforms", "Railway, GitHub Actions, Vercel and LLM/API spend together: so "
          "far this month, where the month ends at the current pace, and the sum of the monthly budgets.",
          "currencyUSD", [P("obs:cost_usd:month_to_date", "month to date", instant=True),
                          P("obs:cost_usd:projected_month", "month-end projection", instant=True),
                          P("obs:cost_budget_usd:per_month", "monthly budget", instant=True)],
          links=runbook_links([proj], [budgets]), w=8, h=6),
        S("bargauge", "Month to date by platform", "Spend so far this month per platform (Railway: its billing "
          "period so far; GitHub: Actions, net of included minutes; Vercel: billed charges; LLM: the apps' "
          "api_cost_usd_total since the 1st).", "currencyUSD",
          [P("sort_desc(platform:cost_usd:month_to_date)", "{{platform}}", instant=True)], w=8, h=6),
        S("bargauge", "Month-end projection by platform", "Month to date plus the daily pace for each day left "
          "(the last 24 hours' spend; until Prometheus has a day of history, the month's average so far); Railway: "
          "Railway's own estimate for its billing period.", "currencyUSD",
          [P("sort_desc(platform:cost_usd:projected_month)", "{{platform}}", instant=True)], w=8, h=6),
        S("bargauge", "Month-end projection against the monthly budget", "Projection / monthly budget per "
          f"platform; SpendProjectedOverMonthlyBudget ({proj.severity}) above {proj.value:g}.", "percentunit",
          [P("platform:cost_usd:projected_month / on (platform) platform:cost_budget_usd:per_month",
             "{{platform}}", instant=True)], th_alert([proj]), runbook_links([proj], [budgets]), w=12, h=6,
          minv=0, maxv=1.5),
        S("bargauge", "Last 24 h against the daily budget", "Spend in the last 24 hours / daily budget (monthly "
          f"budget over the days of the month); PlatformSpendOverDailyBudget ({day.severity}) above {day.value:g} "
          "(LLM/API: DailySpendOverBudget above 1, below).", "percentunit",
          [P("platform:cost_usd:increase24h / on (platform) platform:cost_budget_usd:per_day", "{{platform}}",
             instant=True)], th_alert([day]), runbook_links([day], [budgets]), w=12, h=6, minv=0, maxv=2),
        S("timeseries", "Month to date by platform", "Spend so far this month per platform, stacked: the total "
          "is the top line. It falls back at the start of each billing period.", "currencyUSD",
          [P("platform:cost_usd:month_to_date", "{{platform}}")], stack=True),
        S("timeseries", "Spend in the last 24 hours by platform", "How much each platform's bill grew in the "
          "last 24 hours (a provider's correction downwards counts as 0).", "currencyUSD",
          [P("platform:cost_usd:increase24h", "{{platform}}")]),
    )
    b.row("Platform bills: what they are made of")
    b.add(
        S("bargauge", "GitHub: this month by product and SKU", "GitHub billing usage of the month, net of "
          "discounts (the plan's included minutes), per product and SKU; only Actions counts as the platform's "
          "spend above.", "currencyUSD",
          [P("sort_desc(sum by (product, sku) (github_billing_cost_dollars))", "{{product}} {{sku}}",
             instant=True)], w=8),
        S("bargauge", "GitHub Actions minutes this month", "Runner minutes used this month per SKU, the plan's "
          "included minutes too.", "short",
          [P('sort_desc(sum by (sku) (github_billing_quantity{product="actions", unit="minutes"}))', "{{sku}}",
             instant=True)], w=8),
        S("bargauge", "Railway: billing period so far and estimate", "Each project's cost of the billing period "
          "so far and Railway's estimate for the whole period (usage x published prices).", "currencyUSD",
          [P("sum by (project) (railway_cost_to_date_dollars)", "{{project}} so far", instant=True),
           P("sum by (project) (railway_estimated_cost_dollars)", "{{project}} estimate", instant=True)], w=8),
        S("bargauge", "Vercel: this month by service", "Vercel charges of the month per service (FOCUS "
          "BilledCost).", "currencyUSD",
          [P("sort_desc(sum by (service) (vercel_billing_cost_dollars))", "{{service}}", instant=True)], w=12),
        S("bargauge", "Vercel: this month by project", "Vercel charges of the month per project (none: "
          "team-level charges; other: projects outside VERCEL_PROJECTS).", "currencyUSD",
          [P("sort_desc(sum by (project) (vercel_billing_project_cost_dollars))", "{{project}}", instant=True)],
          w=12),
    )
