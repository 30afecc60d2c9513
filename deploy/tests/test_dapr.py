"""The chart's Dapr resources are the files of deploy/dapr, which a local daprd reads."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import CHART, ROOT, objects

HELM = os.environ.get("TODO_HELM", "helm")
KUBE = os.environ.get("TODO_KUBE_VERSION", "1.33.0")

DAPR_DIR = ROOT / "deploy" / "dapr"
# What the chart may change in the pub/sub component, and only there.
CLUSTER_KEYS = {"brokers", "disableTls", "authType", "saslUsername", "saslPassword", "saslMechanism"}
# ...and, with a topicPrefix, the topics named in these (see the prefix test).
SCOPE_KEYS = {"publishingScopes", "subscriptionScopes"}
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
    assert set(rendered) == set(local)
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


def test_no_declarative_subscription_is_shipped_the_event_service_subscribes_itself():
    # In Dapr mode the event service serves GET /dapr/subscribe (its topic prefix,
    # Dapr's dead-letter topic); a declarative Subscription for the same topic is
    # replaced by it in daprd 1.14, and in Kafka mode it would make the sidecar join
    # the service's consumer group and take partitions from its consumer.
    assert not [k for k in local_files() if k[0] == "Subscription"]
    assert not list(DAPR_DIR.glob("subscription*"))


def test_a_subscription_file_added_to_the_dapr_folder_makes_rendering_fail(tmp_path):
    chart = tmp_path / "todo"
    shutil.copytree(CHART, chart)  # follows the links: a copy of deploy/dapr, not the folder itself
    (chart / "dapr" / "subscription-created.yaml").write_text(yaml.safe_dump({
        "apiVersion": "dapr.io/v2alpha1", "kind": "Subscription", "metadata": {"name": "todo-tasks-created"},
        "spec": {"pubsubname": "kafka-pubsub", "topic": "todo.tasks.created", "routes": {"default": "/dapr/events"}},
    }))
    out = subprocess.run(
        [HELM, "template", "todo", str(chart), "--kube-version", KUBE, "-f", str(chart / "values-doks.yaml")],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0, "a declarative Subscription was rendered"
    assert "deploy/dapr/subscription-created.yaml: a declarative Subscription" in out.stderr, out.stderr


def test_the_component_sets_no_entry_that_daprd_1_14_ignores():
    # daprd 1.14.4's Kafka component has no excludeHeaderMetaRegex: records published
    # through the sidecar carry partitionKey and rawPayload headers (deploy/dapr/README.md).
    items = {i["name"] for i in local_files()[("Component", "kafka-pubsub")]["spec"]["metadata"]}
    assert "excludeHeaderMetaRegex" not in items


def test_a_topic_prefix_is_put_in_front_of_every_scoped_topic_and_nothing_else_changes():
    out = subprocess.run(
        [HELM, "template", "todo", str(CHART), "--kube-version", KUBE, "-f", str(CHART / "values-doks.yaml"),
         "-f", str(CHART / "values-dapr.yaml"), "--set", "topicPrefix=stg."],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    (component,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Component"]
    (plain,) = objects("dapr", "Component")
    mine = {i["name"]: i for i in component["spec"]["metadata"]}
    theirs = {i["name"]: i for i in plain["spec"]["metadata"]}
    assert mine["publishingScopes"]["value"] == (
        "todo-backend=stg.todo.tasks.created,stg.todo.tasks.updated,stg.todo.tasks.deleted,stg.todo.tasks.completed;"
        "todo-event-service=stg.todo.tasks.dlq"
    )
    assert mine["subscriptionScopes"]["value"] == (
        "todo-backend=;"
        "todo-event-service=stg.todo.tasks.created,stg.todo.tasks.updated,stg.todo.tasks.deleted,stg.todo.tasks.completed"
    )
    assert {k: v for k, v in mine.items() if k not in SCOPE_KEYS} == {k: v for k, v in theirs.items() if k not in SCOPE_KEYS}
    assert [i["name"] for i in component["spec"]["metadata"]] == [i["name"] for i in plain["spec"]["metadata"]]
