"""Alerts from the one rule file, monitors per service, a dashboard of real metrics."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import CHART, ROOT, metric_names, objects

SPEC_METRICS = {
    "events_published_total",
    "events_published_failures_total",
    "event_publish_duration_seconds",
    "events_consumed_total",
    "event_processing_duration_seconds",
    "consumer_lag",
}


@pytest.mark.parametrize("name", ["doks", "scale", "external", "dapr"])
def test_the_prometheus_rule_is_ops_prometheus_alerts_yml(name):
    (rule,) = objects(name, "PrometheusRule")
    source = yaml.safe_load((ROOT / "ops" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]} >= {
        "EventPublishFailureRateHigh", "ConsumerLagHigh", "EventProcessingSlow"
    }


def test_the_chart_reads_the_alerts_through_a_link_not_a_copy():
    link = CHART / "files" / "alerts.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "ops" / "prometheus" / "alerts.yml").resolve()


@pytest.mark.parametrize("name", ["doks", "scale", "external", "dapr"])
def test_each_service_has_a_service_monitor_on_its_metrics_endpoint(name):
    monitors = {m["metadata"]["name"]: m for m in objects(name, "ServiceMonitor")}
    assert set(monitors) == {"todo-backend", "todo-event-service"}
    for svc, m in monitors.items():
        assert m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == svc
        (ep,) = m["spec"]["endpoints"]
        assert (ep["port"], ep["path"]) == ("http", "/metrics")


def _dashboard():
    return json.loads((CHART / "files" / "dashboard.json").read_text())


# Words with an underscore in the queries that are not metric names.
PROMQL_WORDS = {"histogram_quantile", "__rate_interval", "event_type", "error_class"}


def _dashboard_metrics():
    exprs = [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    found = set()
    for e in exprs:
        for word in set(re.findall(r"\b[a-z_]*_[a-z_]+\b", e)) - PROMQL_WORDS:
            found.add(re.sub(r"_(bucket|sum|count)$", "", word))
    return found


def test_the_dashboard_queries_only_metrics_the_services_export():
    unknown = _dashboard_metrics() - metric_names()
    assert not unknown, f"not in crates/*/src/metrics.rs: {sorted(unknown)}"


def test_the_dashboard_shows_every_metric_of_the_specification():
    assert SPEC_METRICS <= _dashboard_metrics()


def test_the_dashboard_is_shipped_in_a_configmap_for_grafana():
    (cm,) = [c for c in objects("doks", "ConfigMap") if c["metadata"]["name"] == "todo-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["todo.json"]) == _dashboard()
