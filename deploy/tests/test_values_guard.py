"""The chart refuses values that break the specification's shape, before anything is applied
(values.schema.json for each value, templates/checks.yaml for rules across values)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import CHART

HELM = os.environ.get("TODO_HELM", "helm")
KUBE = os.environ.get("TODO_KUBE_VERSION", "1.33.0")


def _template(*sets):
    args = [HELM, "template", "todo", str(CHART), "--kube-version", KUBE, "-f", str(CHART / "values-doks.yaml")]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("backend.replica=3", "additional properties 'replica' not allowed"),
        ("backend.replicas=1", "minimum"),
        ("backend.autoscaling.minReplicas=1", "minimum"),
        ("eventService.autoscaling.maxReplicas=4", "exceeds the partitions"),
        ("kafka.topics.minInsyncReplicas=3", "must be below kafka.topics.replicas"),
        ("kafka.topics.replicas=4", "exceeds the Kafka nodes"),
        ("kafka.external.securityProtocol=SASL_PLAIN", "securityProtocol"),
        ("dapr.logLevel=verbose", "logLevel"),
        ("transport=grpc", "/transport"),
        ("transport=dapr,dapr.enabled=false", "transport=dapr needs dapr.enabled=true"),
        ("transport=dapr,eventService.groupId=todo-events", "must be the Dapr component's consumerGroup"),
        ("backend.env.EVENT_TRANSPORT=dapr", "backend.env.EVENT_TRANSPORT: set the value transport instead"),
        ("eventService.env.DAPR_PUBSUB_NAME=other", "eventService.env.DAPR_PUBSUB_NAME: set the value transport instead"),
        ("dapr.subscriptions=true", "additional properties 'subscriptions' not allowed"),
    ],
)
def test_a_value_that_breaks_the_shape_is_refused(setting, complaint):
    out = _template(setting)
    assert out.returncode != 0, f"{setting} was accepted"
    assert complaint in out.stderr, out.stderr


def test_the_same_command_renders_with_the_values_as_shipped():
    out = _template()
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("transport", ["kafka", "dapr"])
def test_either_transport_renders_with_the_sidecars_on(transport):
    out = _template(f"transport={transport}")
    assert out.returncode == 0, out.stderr


def test_kafka_mode_renders_without_the_sidecars():
    out = _template("dapr.enabled=false")
    assert out.returncode == 0, out.stderr
    assert "dapr.io/enabled" not in out.stdout and "EVENT_TRANSPORT" in out.stdout
