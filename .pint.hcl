# pint (cloudflare/pint) policy for prometheus/rules. Run offline: `pint -n -o -l WARN lint prometheus/rules`.
# pint cannot be built here (Go module proxy: 403), so tests/alerting/rulepolicy.py enforces the same
# policy in Python; tests/alerting/test_pint.py runs pint too whenever it is installed.
parser {
  relaxed = []
}

rule {
  match {
    kind = "alerting"
  }
  label "severity" {
    severity = "bug"
    required = true
    values   = ["critical", "high", "medium", "low"]
  }
  label "service" {
    severity = "bug"
    required = true
  }
  label "team" {
    severity = "bug"
    required = true
  }
  annotation "summary" {
    severity = "bug"
    required = true
    value    = "^[^{}]+$"
  }
  annotation "description" {
    severity = "bug"
    required = true
    value    = ".*\\{\\{.*"
  }
  annotation "runbook_url" {
    severity = "bug"
    required = true
    value    = "^https://github\\.com/obs-stack/obs-stack/blob/main/runbooks/[a-z0-9-]+\\.md$"
  }
  annotation "dashboard_url" {
    severity = "bug"
    required = true
    value    = "^https?://.+"
  }
}

rule {
  match {
    kind = "alerting"
  }
  # Multiwindow burn-rate alerts (sloth groups) use their short window as the flap guard.
  ignore {
    name = "^SLO.+"
  }
  for {
    severity = "bug"
    min      = "1m"
  }
}
