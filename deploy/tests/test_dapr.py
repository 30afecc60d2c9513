"""The chart's Dapr resources are the files of deploy/dapr, which a local daprd reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import ROOT, objects

DAPR_DIR = ROOT / "deploy" / "dapr"
# What the chart may change in the pub/sub component, and only there.
CLUSTER_KEYS = {"brokers", "disableTls", "authType", "saslUsername", "saslPassword", "saslMechanism"}
DAPR_KINDS = {"Component", "Subscription", "Resiliency", "Configuration"}


def local_files() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(DAPR_DIR.glob("*.yaml")):
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def _without_chart_metadata(obj):
    obj = dict(obj)
    obj["metadata"] = {"name": obj["metadata"]["name"]}
    return obj


def _split(component):
    items = component["spec"]["metadata"]
    return (
        {i["name"]: i for i in items if i["name"] in CLUSTER_KEYS},
        [i for i in items if i["name"] not in CLUSTER_KEYS],
    )


def test_the_chart_is_linked_to_the_one_folder_of_dapr_files():
    link = ROOT / "deploy" / "helm" / "todo" / "dapr"
    assert link.is_symlink() and link.resolve() == DAPR_DIR.resolve()


@pytest.mark.parametrize("name", ["local", "doks", "scale", "external", "dapr"])
def test_the_rendered_dapr_resources_are_the_local_files(name):
    local = local_files()
    rendered = {(o["kind"], o["metadata"]["name"]): o for o in objects(name) if o["kind"] in DAPR_KINDS}
    expected = set(local) if name == "dapr" else {k for k in local if k[0] != "Subscription"}
    assert set(rendered) == expected
    for key, obj in rendered.items():
        assert obj["metadata"]["annotations"]["todo.dev/source"].startswith("deploy/dapr/")
        mine, theirs = _without_chart_metadata(obj), local[key]
        if key[0] == "Component":
            cluster, rest = _split(mine)
            _, local_rest = _split(theirs)
            assert rest == local_rest, "only the connection entries may differ"
            assert set(cluster) >= {"brokers", "authType", "disableTls"}
            mine = {**mine, "spec": {k: v for k, v in mine["spec"].items() if k != "metadata"}}
            theirs = {**theirs, "spec": {k: v for k, v in theirs["spec"].items() if k != "metadata"}}
        assert mine == theirs, key


def test_the_cluster_component_logs_in_with_scram_sha_512_and_a_secret_reference():
    (component,) = objects("doks", "Component")
    cluster, _ = _split(component)
    assert cluster["brokers"]["value"] == "todo-kafka-kafka-bootstrap:9092"
    assert cluster["authType"]["value"] == "password"
    assert cluster["saslMechanism"]["value"] == "SHA-512"
    assert cluster["saslUsername"]["value"] == "todo-dapr"
    assert cluster["saslPassword"] == {"name": "saslPassword", "secretKeyRef": {"name": "todo-dapr", "key": "password"}}
    assert cluster["disableTls"]["value"] == "true"  # the internal listener is plaintext
    (external,) = objects("external", "Component")
    assert _split(external)[0]["disableTls"]["value"] == "false"  # SASL_SSL


def test_the_local_component_needs_no_authentication_and_bounds_its_retries():
    component = local_files()[("Component", "kafka-pubsub")]
    items = {i["name"]: i.get("value") for i in component["spec"]["metadata"]}
    assert component["spec"]["type"] == "pubsub.kafka"
    assert items["authType"] == "none"
    assert items["initialOffset"] == "oldest"
    assert 0 < int(items["backOffMaxRetries"]) <= 10
    assert items["consumerGroup"] == "todo-event-service"
    assert sorted(component["scopes"]) == ["todo-backend", "todo-event-service"]


def test_the_configuration_resolves_names_through_kubernetes_not_mdns():
    config = local_files()[("Configuration", "todo-dapr")]
    assert config["spec"]["nameResolution"]["component"] == "kubernetes"


def test_the_subscriptions_cover_the_four_task_topics_with_raw_payloads():
    subs = [d for (k, _), d in local_files().items() if k == "Subscription"]
    assert sorted(s["spec"]["topic"] for s in subs) == [
        "todo.tasks.completed", "todo.tasks.created", "todo.tasks.deleted", "todo.tasks.updated"
    ]
    for s in subs:
        assert s["apiVersion"] == "dapr.io/v2alpha1"
        assert s["spec"]["pubsubname"] == "kafka-pubsub"
        assert s["spec"]["metadata"]["rawPayload"] == "true"
        assert "deadLetterTopic" not in s["spec"]
        assert s["scopes"] == ["todo-event-service"]
