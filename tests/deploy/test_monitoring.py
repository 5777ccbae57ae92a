"""deploy/prometheus and deploy/grafana: alert rules that promtool accepts and that fire when they should, a
scrape config that matches the compose file and the PodMonitors, and a dashboard that queries only metrics
that exist, in valid PromQL."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from .conftest import ROOT, torchserve_metrics

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "zooserve.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "zooserve.json"

# The gateway's metrics as documented (histograms by their base name).
# TODO(lead): check against the real thing once the gateway serves /metrics with every series registered:
# render zooserve.gateway.metrics.Metrics() and the experiment router's metrics, and take the names from there.
GATEWAY_METRICS = {
    "zoo_requests_total", "zoo_request_duration_seconds", "zoo_backend_duration_seconds", "zoo_requests_in_flight",
    "zoo_request_body_bytes", "zoo_model_loads_total", "zoo_model_load_duration_seconds",
    "zoo_experiment_requests_total", "zoo_experiment_request_duration_seconds",
}
HISTOGRAMS = {"zoo_request_duration_seconds", "zoo_backend_duration_seconds", "zoo_request_body_bytes",
              "zoo_model_load_duration_seconds", "zoo_experiment_request_duration_seconds"}
PROMETHEUS_METRICS = {"up"}


KNOWN_METRICS = GATEWAY_METRICS | PROMETHEUS_METRICS | torchserve_metrics()

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (histogram series by their base name)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue  # a function or an aggregation, or a keyword
        name = match.group()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(base if base in HISTOGRAMS else name)
    return names


def test_metric_names_finds_what_a_query_reads():
    expr = ('histogram_quantile(0.95, sum by (model, le) (rate(zoo_request_duration_seconds_bucket{model=~"$model"}'
            '[$__rate_interval]))) / 1e6 + on(model) group_left sum without (code) (zoo_requests_total) and up')
    assert metric_names(expr) == {"zoo_request_duration_seconds", "zoo_requests_total", "up"}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def as_promql(expr: str) -> str:
    """A Grafana query as plain PromQL: its variables replaced by what Grafana would put there."""
    return (expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
            .replace("$model", ".*").replace("$experiment", ".*"))


# --- alert rules ---

def test_rules_file_is_generated_from_the_prometheus_rule():
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("sync_rules", PROMETHEUS / "sync_rules.py")
    sync = module_from_spec(spec)
    spec.loader.exec_module(sync)
    assert RULES.read_text() == sync.rules_file(), "run: python deploy/prometheus/sync_rules.py"


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_alerts_fire_when_they_should(promtool):
    """promtool's unit tests: error rate, backend down and p99 latency, each firing and each not yet."""
    result = subprocess.run([promtool, "test", "rules", "zooserve.rules.test.yml"], cwd=PROMETHEUS / "rules",
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_error_rate_latency_and_backends():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules}
    assert {"ZooserveHighErrorRate", "ZooserveHighP99Latency", "ZooserveBackendDown", "ZooserveGatewayDown"} <= set(
        alerts)
    assert "histogram_quantile(0.99" in alerts["ZooserveHighP99Latency"]["expr"]
    assert 'up{job="torchserve"} == 0' in alerts["ZooserveBackendDown"]["expr"]
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS
        assert not unknown, f"{rule['alert']} reads unknown metrics {unknown}"


# --- scrape config ---

def test_scrape_config_matches_compose_and_kubernetes(promtool, tmp_path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    # the PodMonitors' jobLabel gives the same names in Kubernetes; the alert rules use them
    assert jobs["gateway"] == ["api:8000"] and jobs["torchserve"] == ["torchserve:8082"]
    assert config["rule_files"] == ["/etc/prometheus/rules/zooserve.rules.yml"]  # ./deploy/prometheus mounted there
    # promtool checks the config with its rule file where it lies here
    config["rule_files"] = [str(RULES)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana ---

def test_dashboard_is_valid_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "zooserve" and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24
        if panel["type"] != "row":
            # the data source is a variable: compose's provisioned one, or kube-prometheus-stack's
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def test_dashboard_shows_what_the_issue_asks_for():
    queries = dashboard_queries()
    titles = " | ".join(title for title, _ in queries).lower()
    for topic in ("requests per second, by model", "latency p95, by model", "error rate", "by variant",
                  "gpu utilisation"):
        assert topic in titles, topic
    exprs = " ".join(expr for _, expr in queries)
    assert "histogram_quantile(0.95" in exprs and "zoo_experiment_requests_total" in exprs
    assert "GPUUtilization" in exprs


@pytest.mark.parametrize("title,expr", dashboard_queries())
def test_dashboard_queries_only_metrics_that_exist(title, expr):
    names = metric_names(expr)
    assert names, f"{title}: no metric found in {expr}"
    assert names <= KNOWN_METRICS, f"{title}: unknown metrics {names - KNOWN_METRICS}"


def test_dashboard_queries_are_valid_promql(promtool, tmp_path):
    """Every query, its Grafana variables filled in, as a recording rule: promtool parses them all."""
    rules = [{"record": f"zooserve:dashboard:query{i}", "expr": as_promql(expr)}
             for i, (_, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_compose_paths():
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/zooserve.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
