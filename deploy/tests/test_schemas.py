"""Every rendered object is valid, strictly, against its real schema."""

from __future__ import annotations

import copy

import pytest

import schemas
from conftest import SETS, objects, one, rendering


def _cases():
    for name in SETS:
        try:
            docs = rendering(name)
        except FileNotFoundError:
            yield pytest.param(name, None, id=f"{name}-not-rendered")
            continue
        for i, obj in enumerate(docs):
            yield pytest.param(name, i, id=f"{name}-{obj['kind']}-{obj['metadata']['name']}")


@pytest.mark.parametrize(("name", "index"), list(_cases()))
def test_every_rendered_object_matches_its_schema_with_no_unknown_field(name, index):
    assert index is not None, f"{name} was not rendered"
    schemas.validate(rendering(name)[index])


def test_each_values_set_renders_the_objects_it_promises():
    kinds = {name: {o["kind"] for o in objects(name)} for name in SETS}
    strimzi = {"KafkaNodePool", "Kafka", "KafkaTopic", "KafkaUser"}
    for name in ("local", "doks", "scale"):
        assert strimzi <= kinds[name] and "Cluster" in kinds[name] and "StatefulSet" in kinds[name]
    assert not (strimzi & kinds["external"]) and "Cluster" not in kinds["external"]
    assert {"ScaledObject", "HorizontalPodAutoscaler", "PrometheusRule", "ServiceMonitor"} <= kinds["doks"]
    assert {"Component", "Resiliency", "Configuration"} <= kinds["dapr"]
    assert not any("Subscription" in k for k in kinds.values()), "the event service subscribes itself"


def test_the_validator_rejects_an_unknown_field_in_a_built_in_kind():
    deployment = copy.deepcopy(one("doks", "Deployment", "todo-backend"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(schemas.SchemaError):
        schemas.validate(deployment)


@pytest.mark.parametrize(
    ("kind", "name", "path", "field"),
    [
        ("KafkaTopic", "todo-tasks-created", ["spec"], "retentionMs"),
        ("Kafka", "todo-kafka", ["spec", "kafka"], "replicas"),  # gone in kafka.strimzi.io/v1
        ("ScaledObject", "todo-event-service", ["spec"], "maxReplicas"),
        ("Component", "kafka-pubsub", ["spec"], "brokers"),
        ("Cluster", "todo-pg", ["spec", "bootstrap", "initdb"], "databases"),
    ],
)
def test_the_validator_rejects_an_unknown_field_in_a_custom_resource(kind, name, path, field):
    obj = copy.deepcopy(one("doks", kind, name))
    node = obj
    for key in path:
        node = node[key]
    node[field] = 3
    with pytest.raises(schemas.SchemaError):
        schemas.validate(obj)


def test_the_validator_rejects_a_kind_it_has_no_schema_for():
    with pytest.raises(schemas.SchemaError):
        schemas.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
