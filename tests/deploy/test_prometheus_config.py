"""The monitoring configuration in deploy/ is valid, tested and consistent with the code.

Runs Prometheus's own checker (promtool, from Debian's `prometheus` package, installed by
scripts/install) on the scrape config, the alert rules, the rule unit tests and the live
/metrics output of a real API process; checks that every alert has unit tests; and checks
that the Grafana dashboard and the Promtail config parse and only use metrics that exist.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.processes import FulcrumProcess

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fulcrum.json"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards.yml"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources.yml"
PROMTAIL = DEPLOY / "loki" / "promtail.yml"

# Every metric Fulcrum exports (src/fulcrum/observability/metrics.py).
# Dashboards and alerts may use these names only.
KNOWN_METRICS = frozenset(
    {
        "fulcrum_auth_failures_total",
        "fulcrum_requests_total",
        "fulcrum_request_duration_seconds",
        "fulcrum_decisions_total",
        "fulcrum_decision_evaluation_seconds",
        "fulcrum_rate_limited_total",
        "fulcrum_rate_limit_degraded",
        "fulcrum_event_publish_inflight",
        "fulcrum_event_publish_refused_total",
        "fulcrum_worker_pending_events",
        "fulcrum_worker_lag_seconds",
        "fulcrum_ledger_verification_failures_total",
        "fulcrum_decisions_unrecorded_total",
        "fulcrum_decision_voids_total",
        "fulcrum_decision_void_failures_total",
    }
)
HISTOGRAMS = frozenset({"fulcrum_request_duration_seconds", "fulcrum_decision_evaluation_seconds"})
METRIC_NAME = re.compile(r"fulcrum_[a-z_]+")
# Grafana's built-in interval variables, replaced by a fixed duration to parse the PromQL.
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: it comes with Debian's `prometheus` package, which "
            "./scripts/install installs (apt-get install -y prometheus)"
        )
    return path


def run_promtool(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [promtool(), *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    command = " ".join(["promtool", *args])
    output = f"$ {command}  (exit {result.returncode})\n{result.stdout}{result.stderr}"
    print(output)
    assert result.returncode == 0, output
    return output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def unknown_metrics(expr: str) -> set[str]:
    return {base_metric(name) for name in METRIC_NAME.findall(expr)} - KNOWN_METRICS


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(all_panels(panel.get("panels", [])))
    return found


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in all_panels(dashboard()["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# --- Prometheus ----------------------------------------------------------------------------


def test_promtool_check_config() -> None:
    output = run_promtool("check", "config", str(PROMETHEUS_CONFIG.relative_to(REPO)))
    assert "alerts.yml" in output, "prometheus.yml must load alerts.yml through rule_files"


def test_promtool_check_rules() -> None:
    run_promtool("check", "rules", str(ALERTS.relative_to(REPO)))


def test_promtool_test_rules() -> None:
    output = run_promtool("test", "rules", str(ALERTS_TEST.relative_to(REPO)))
    assert "SUCCESS" in output


def test_scrape_config_covers_api_and_worker() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"fulcrum-api", "fulcrum-worker"} <= set(jobs)
    assert jobs["fulcrum-api"]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
    assert jobs["fulcrum-worker"]["static_configs"][0]["targets"] == ["127.0.0.1:8081"]
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_has_for_severity_summary_and_description() -> None:
    rules = alert_rules()
    assert len(rules) >= 9
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, rule["alert"]
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), rule["alert"]
        assert annotations.get("description"), rule["alert"]


def test_required_alerts_exist() -> None:
    assert {rule["alert"] for rule in alert_rules()} >= {
        "AuthFailureSpike",
        "RateLimitViolations",
        "RateLimitDegraded",
        "EventBacklog",
        "WorkerLag",
        "HighErrorRate",
        "LedgerVerificationFailure",
        "DecisionsUnrecorded",
        "EventPublishRefusals",
    }


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = {rule["alert"] for rule in alert_rules()}
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert not alerts - firing, f"alerts without a firing test case: {sorted(alerts - firing)}"
    assert not alerts - quiet, f"alerts without a non-firing test case: {sorted(alerts - quiet)}"
    assert not (firing | quiet) - alerts, f"tests of unknown alerts: {(firing | quiet) - alerts}"


def test_alert_rules_use_only_known_metrics() -> None:
    for rule in alert_rules():
        assert METRIC_NAME.search(rule["expr"]), rule["alert"]
        assert not unknown_metrics(rule["expr"]), (rule["alert"], unknown_metrics(rule["expr"]))


def test_live_metrics_pass_promtool_check_metrics(api: FulcrumProcess) -> None:
    # One refused request, so the labelled counters and histograms carry samples too.
    assert api.http().get("/v1/api-keys").status_code == 401
    response = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    run_promtool("check", "metrics", stdin=response.text)
    declared = set(re.findall(r"^# TYPE (fulcrum_[a-z_]+) ", response.text, re.MULTILINE))
    assert declared >= KNOWN_METRICS, f"not exported: {sorted(KNOWN_METRICS - declared)}"
    assert 'fulcrum_auth_failures_total{reason="missing"}' in response.text


# --- Grafana -------------------------------------------------------------------------------


def test_dashboard_parses_with_uid_panels_and_datasource_variable() -> None:
    dash = dashboard()
    assert dash["uid"] == "fulcrum-overview"
    assert dash["title"]
    panels = all_panels(dash["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert sum(1 for panel in panels if panel.get("targets")) >= 10
    variables = {var["name"]: var for var in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels:
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel


def test_dashboard_uses_only_known_metrics_and_covers_them() -> None:
    exprs = dashboard_exprs()
    used: set[str] = set()
    for expr in exprs:
        assert not unknown_metrics(expr), (expr, unknown_metrics(expr))
        used |= {base_metric(name) for name in METRIC_NAME.findall(expr)}
    assert used == KNOWN_METRICS, f"metrics without a panel: {sorted(KNOWN_METRICS - used)}"


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """Each panel query, as a recording rule, passes `promtool check rules`."""
    rules = []
    for number, query in enumerate(dashboard_exprs()):
        expr = query
        for variable, duration in GRAFANA_DURATIONS.items():
            expr = expr.replace(variable, duration)
        assert "$" not in expr, query
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = run_promtool("check", "rules", str(path))
    assert f"{len(rules)} rules found" in output


def test_grafana_provisioning_parses() -> None:
    providers = load_yaml(GRAFANA_DASHBOARDS)["providers"]
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"]
    datasources = load_yaml(GRAFANA_DATASOURCES)["datasources"]
    assert [ds["type"] for ds in datasources] == ["prometheus"]
    assert datasources[0]["url"].startswith("http")


# --- Loki / Promtail -----------------------------------------------------------------------


def test_promtail_parses_json_and_labels_only_low_cardinality_fields() -> None:
    config = load_yaml(PROMTAIL)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    paths = [
        static["labels"]["__path__"]
        for job in jobs.values()
        for static in job.get("static_configs", [])
    ]
    assert any(path.endswith("/logs/*.log") for path in paths), paths
    assert any("kubernetes_sd_configs" in job for job in jobs.values())
    for name, job in jobs.items():
        stages = job["pipeline_stages"]
        json_stages = [stage["json"] for stage in stages if "json" in stage]
        assert json_stages, f"{name}: no json stage"
        assert set(json_stages[0]["expressions"]) >= {"level", "service", "trace_id", "tenant_id"}
        labels = {key for stage in stages if "labels" in stage for key in stage["labels"]}
        assert labels == {"level", "service"}, f"{name}: labels {labels}"
        static_labels = {
            key for static in job.get("static_configs", []) for key in static.get("labels", {})
        }
        assert not static_labels & {"trace_id", "tenant_id"}, name
