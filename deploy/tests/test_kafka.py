"""The Strimzi objects have the specification's shape."""

from __future__ import annotations

import pytest

from conftest import objects, one, topic_constants, values

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
STRIMZI_SETS = ["local", "doks", "scale", "dapr"]


@pytest.mark.parametrize("name", STRIMZI_SETS)
def test_every_topic_of_the_contract_has_three_partitions_rf_3_seven_days_and_min_isr_2(name):
    topics = {t["spec"]["topicName"]: t["spec"] for t in objects(name, "KafkaTopic")}
    assert set(topics) == set(topic_constants().values())
    for topic, spec in topics.items():
        assert spec["partitions"] == 3, topic
        assert spec["replicas"] == 3, topic
        assert int(spec["config"]["retention.ms"]) == SEVEN_DAYS_MS, topic
        assert int(spec["config"]["min.insync.replicas"]) == 2, topic


@pytest.mark.parametrize("name", STRIMZI_SETS)
def test_the_cluster_is_three_kraft_nodes_with_persistent_storage_and_a_scram_listener(name):
    (pool,) = objects(name, "KafkaNodePool")
    (kafka,) = objects(name, "Kafka")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 3
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    volumes = pool["spec"]["storage"]["volumes"]
    assert [v["type"] for v in volumes] == ["persistent-claim"]
    assert volumes[0]["kraftMetadata"] == "shared"
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["auto.create.topics.enable"] is False
    assert "topicOperator" in kafka["spec"]["entityOperator"] and "userOperator" in kafka["spec"]["entityOperator"]


def _acls(name, user):
    user_obj = one(name, "KafkaUser", user)
    assert user_obj["spec"]["authentication"]["type"] == "scram-sha-512"
    out = {}
    for acl in user_obj["spec"]["authorization"]["acls"]:
        r = acl["resource"]
        assert r.get("patternType", "literal") == "literal", f"{user}: only literal resources"
        assert acl.get("type", "allow") == "allow"
        out.setdefault((r["type"], r["name"]), set()).update(acl["operations"])
    return out


def test_each_principal_may_do_only_what_its_service_does():
    t = topic_constants()
    tasks = [t[k] for k in ("TASK_CREATED", "TASK_UPDATED", "TASK_DELETED", "TASK_COMPLETED")]
    group = values("values-doks.yaml")["eventService"]["groupId"]

    backend = _acls("doks", "todo-backend")
    expected = {("topic", n): {"Write", "Describe"} for n in tasks}
    expected[("topic", t["DLQ"])] = {"Describe"}  # its start-up topic check only
    assert backend == expected

    consumer = _acls("doks", "todo-event-service")
    expected = {("topic", n): {"Read", "Describe"} for n in tasks}
    expected[("topic", t["DLQ"])] = {"Write", "Describe"}
    expected[("group", group)] = {"Read", "Describe"}
    assert consumer == expected

    dapr = _acls("doks", "todo-dapr")
    assert set(dapr) == set(backend) | set(consumer)
    for resource, ops in dapr.items():
        assert ops <= {"Read", "Write", "Describe"}, resource


@pytest.mark.parametrize("name", STRIMZI_SETS)
def test_no_principal_can_create_delete_or_alter_anything(name):
    for user in objects(name, "KafkaUser"):
        for acl in user["spec"]["authorization"]["acls"]:
            assert not set(acl["operations"]) & {"All", "Create", "Delete", "Alter", "AlterConfigs", "ClusterAction"}
            assert acl["resource"]["name"] != "*"


def test_without_a_cluster_the_services_use_the_external_bootstrap_and_credentials():
    ext = values("values-doks.yaml", "values-external-example.yaml")["kafka"]["external"]
    for dep, who in (("todo-backend", "backend"), ("todo-event-service", "eventService")):
        env = {e["name"]: e for e in one("external", "Deployment", dep)["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == ext["bootstrapServers"]
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == ext["securityProtocol"]
        assert env["KAFKA_SASL_USERNAME"]["value"] == ext[who]["username"]
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == ext[who]["passwordSecret"]


def test_the_operator_cli_reads_everything_writes_only_task_topics_and_uses_its_own_groups():
    t = topic_constants()
    user = one("doks", "KafkaUser", "todoctl")
    acls = {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): set(a["operations"])
            for a in user["spec"]["authorization"]["acls"]}
    for key in ("TASK_CREATED", "TASK_UPDATED", "TASK_DELETED", "TASK_COMPLETED"):
        assert acls.pop(("topic", t[key], "literal")) == {"Read", "Write", "Describe"}
    assert acls.pop(("topic", t["DLQ"], "literal")) == {"Read", "Describe"}
    assert acls == {("group", "todoctl-", "prefix"): {"Read", "Describe"}}
