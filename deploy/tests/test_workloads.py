"""The workloads: probes, limits, security, replicas, scaling, network, settings, secrets."""

from __future__ import annotations

import copy
import re

import pytest

from conftest import WORKLOADS, containers, help_env, objects, one, pod_spec, rendering, values

SERVICES = {"todo-backend": 8080, "todo-event-service": 8081}
# Environment variables that are not flags of a service but that the service reads
# all the same: sqlx takes the password from libpq's PGPASSWORD when the URL has none.
DRIVER_ENV = {"PGPASSWORD"}


def _workloads(name):
    return [o for o in objects(name) if o["kind"] in WORKLOADS]


def _binary(container):
    cmd = container.get("command") or []
    for part in cmd:
        base = part.rsplit("/", 1)[-1]
        if base in SERVICES:
            return base
    return None


def test_every_container_has_requests_limits_and_a_restricted_security_context(rendered):
    for w in _workloads(rendered):
        pod = pod_spec(w)
        for c in containers(w):
            where = f"{rendered} {w['kind']}/{w['metadata']['name']} container {c['name']}"
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{where}: {kind}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("privileged", False), where
            assert sc.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot")) is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False


def test_every_long_running_container_has_liveness_and_readiness_probes(rendered):
    for w in _workloads(rendered):
        if w["kind"] == "Job":
            continue
        for c in pod_spec(w)["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{w['metadata']['name']}/{c['name']}"


def test_the_services_are_alive_on_health_and_ready_on_ready_at_their_port(rendered):
    for dep, port in SERVICES.items():
        (c,) = one(rendered, "Deployment", dep)["spec"]["template"]["spec"]["containers"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert c["startupProbe"]["httpGet"]["path"] == "/health"
        (p,) = c["ports"]
        assert (p["name"], p["containerPort"]) == ("http", port)
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["HTTP_ADDR"] == f"0.0.0.0:{port}"
        svc = one(rendered, "Service", dep)
        assert svc["spec"]["ports"][0]["port"] == port and svc["spec"]["ports"][0]["targetPort"] == "http"


def test_every_setting_in_the_chart_is_a_setting_the_service_has(rendered):
    for w in _workloads(rendered):
        for c in containers(w):
            binary = _binary(c)
            if binary is None:
                continue
            known = help_env(binary)
            names = {e["name"] for e in c.get("env", [])}
            unknown = names - known - DRIVER_ENV
            assert not unknown, f"{w['metadata']['name']}/{c['name']}: not in `{binary} --help`: {sorted(unknown)}"


def test_the_values_files_name_only_settings_the_services_have():
    for files in (["values-local.yaml"], ["values-doks.yaml", "values-scale.yaml"]):
        v = values(*files)
        assert set(v["backend"]["env"]) <= help_env("todo-backend")
        assert set(v["eventService"]["env"]) <= help_env("todo-event-service")


def test_pgpassword_only_completes_a_database_url_that_has_no_password(rendered):
    for w in _workloads(rendered):
        for c in containers(w):
            env = {e["name"]: e for e in c.get("env", [])}
            if "PGPASSWORD" not in env:
                continue
            urls = [env[n] for n in ("DATABASE_URL", "EVENT_DATABASE_URL") if n in env]
            assert urls, c["name"]
            for u in urls:
                assert re.fullmatch(r"postgres://[a-z_]+@[a-z0-9.-]+:5432/[a-z_]+", u["value"]), u


SECRET_NAME = re.compile(r"(?i)password|passwd|secret|token|credential")


def _literal_secrets(node, path=""):
    """Paths where a secret-looking name carries a literal value: a mapping key, or a
    name/value pair (container env, Dapr component metadata)."""
    found = []
    if isinstance(node, dict):
        name = node.get("name")
        if isinstance(name, str) and SECRET_NAME.search(name) and node.get("value") not in (None, ""):
            found.append(f"{path}[name={name}]")
        for k, v in node.items():
            if SECRET_NAME.search(k) and isinstance(v, (str, int)) and not isinstance(v, bool):
                found.append(f"{path}.{k}")
            found += _literal_secrets(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _literal_secrets(v, f"{path}[{i}]")
    return found


def test_no_secret_value_is_written_in_any_rendered_object(rendered):
    assert not objects(rendered, "Secret"), "the chart makes no Secret: the operators and the user do"
    for obj in objects(rendered):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert not _literal_secrets(obj.get("spec", {})), where
        for text in re.findall(r"'([^']*://[^']*)'", str(obj)):
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", text), f"{where}: a URL with a password"
    for w in _workloads(rendered):
        for c in containers(w):
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{c['name']} {e['name']}"


def test_the_secret_check_finds_a_literal_password():
    assert _literal_secrets({"metadata": [{"name": "saslPassword", "value": "hunter2"}]})
    assert _literal_secrets({"env": [{"name": "KAFKA_SASL_PASSWORD", "value": "hunter2"}]})
    assert _literal_secrets({"auth": {"password": "hunter2"}})
    assert not _literal_secrets({"env": [{"name": "KAFKA_SASL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "u", "key": "password"}}}]})


def test_the_backend_runs_at_least_two_replicas(rendered):
    dep = one(rendered, "Deployment", "todo-backend")
    hpas = [h for h in objects(rendered, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "todo-backend"]
    if hpas:
        assert "replicas" not in dep["spec"], "the HPA owns the replica count"
        assert hpas[0]["spec"]["minReplicas"] >= 2
        metric = hpas[0]["spec"]["metrics"][0]["resource"]
        assert metric["name"] == "cpu" and metric["target"]["type"] == "Utilization"
    else:
        assert dep["spec"]["replicas"] >= 2
    assert one(rendered, "PodDisruptionBudget", "todo-backend")["spec"]["minAvailable"] >= 1


def test_the_event_service_never_runs_more_consumers_than_a_topic_has_partitions(rendered):
    partitions = min(t["spec"]["partitions"] for t in objects(rendered, "KafkaTopic")) if objects(
        rendered, "KafkaTopic"
    ) else values()["kafka"]["topics"]["partitions"]
    dep = one(rendered, "Deployment", "todo-event-service")
    scaled = [s for s in objects(rendered, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == "todo-event-service"]
    if scaled:
        (so,) = scaled
        assert "replicas" not in dep["spec"], "KEDA owns the replica count"
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= partitions
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        md = trigger["metadata"]
        assert md["consumerGroup"] == values()["eventService"]["groupId"]
        assert md["allowIdleConsumers"] == "false"
        # The spec's performance target: consumer lag below 100 messages.
        assert md["lagThreshold"] == "100"
    else:
        assert 1 <= dep["spec"]["replicas"] <= partitions
    assert one(rendered, "PodDisruptionBudget", "todo-event-service")["spec"]["maxUnavailable"] == 1


def test_the_lag_scaler_logs_in_as_the_event_service():
    (so,) = objects("doks", "ScaledObject")
    (ta,) = objects("doks", "TriggerAuthentication")
    assert so["spec"]["triggers"][0]["authenticationRef"]["name"] == ta["metadata"]["name"]
    assert so["spec"]["triggers"][0]["metadata"]["sasl"] == "scram_sha512"
    (env_ref,) = ta["spec"]["env"]
    assert (env_ref["parameter"], env_ref["name"], env_ref["containerName"]) == ("username", "KAFKA_SASL_USERNAME", "todo-event-service")
    (c,) = one("doks", "Deployment", "todo-event-service")["spec"]["template"]["spec"]["containers"]
    password = next(e for e in c["env"] if e["name"] == "KAFKA_SASL_PASSWORD")["valueFrom"]["secretKeyRef"]
    (ref,) = ta["spec"]["secretTargetRef"]
    assert (ref["parameter"], ref["name"], ref["key"]) == ("password", password["name"], password["key"])


def test_a_network_policy_admits_only_the_namespace_and_monitoring_to_each_service(rendered):
    policies = {p["metadata"]["name"]: p for p in objects(rendered, "NetworkPolicy")}
    for dep, port in SERVICES.items():
        p = policies[dep]
        assert p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == dep
        assert p["spec"]["policyTypes"] == ["Ingress"]
        for rule in p["spec"]["ingress"]:
            for peer in rule["from"]:
                assert "ipBlock" not in peer
                if "namespaceSelector" in peer:
                    assert peer["namespaceSelector"].get("matchLabels"), "a namespace selector names its namespace"
            assert {x["port"] for x in rule["ports"]} <= {port, 9090, 50002}


def test_migrations_run_once_per_release_in_a_hook_job_before_the_rollout(rendered):
    (job,) = objects(rendered, "Job")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"post-install", "pre-upgrade"}
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    cmds = [c["command"] for c in containers(job)]
    assert cmds == [
        ["/usr/local/bin/todo-backend", "--migrate-only"],
        ["/usr/local/bin/todo-event-service", "--migrate-only"],
    ]
    # ...and the replicas never migrate: they wait for the Job's schema.
    for dep in SERVICES:
        (container,) = [c for c in containers(one(rendered, "Deployment", dep)) if c["name"] == dep]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("SKIP_MIGRATIONS") == "true", dep


def test_both_deployments_carry_their_dapr_sidecar_annotations(rendered):
    for dep, port in SERVICES.items():
        ann = one(rendered, "Deployment", dep)["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/enabled"] == "true"
        assert ann["dapr.io/app-id"] == dep
        assert ann["dapr.io/app-port"] == str(port)
        assert ann["dapr.io/config"] == "todo-dapr"
        assert ann["dapr.io/enable-metrics"] == "true" and ann["dapr.io/metrics-port"] == "9090"
        assert ann["dapr.io/log-level"] in {"debug", "info", "warn", "error"}


# What the value transport sets, per service: its transport variable and, in Dapr
# mode, where its sidecar's API is.
TRANSPORT_VAR = {"todo-backend": "EVENT_TRANSPORT", "todo-event-service": "EVENT_SOURCE"}
DAPR_VARS = {"DAPR_HTTP_PORT", "DAPR_PUBSUB_NAME"}


def _env(name, dep):
    (c,) = one(name, "Deployment", dep)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in c["env"]}


def test_the_transport_value_sets_each_service_s_transport_and_in_dapr_mode_its_sidecar(rendered):
    mode = "dapr" if rendered == "dapr" else "kafka"
    (component,) = objects(rendered, "Component")
    for dep, var in TRANSPORT_VAR.items():
        env = _env(rendered, dep)
        assert env[var]["value"] == mode, f"{rendered} {dep}"
        if mode == "dapr":
            # The injected sidecar's HTTP port (fixed at 3500 in Dapr 1.14) and the Component.
            assert env["DAPR_HTTP_PORT"]["value"] == "3500"
            assert env["DAPR_PUBSUB_NAME"]["value"] == component["metadata"]["name"]
            ann = one(rendered, "Deployment", dep)["spec"]["template"]["metadata"]["annotations"]
            assert ann["dapr.io/enabled"] == "true" and ann["dapr.io/app-id"] in component["scopes"]
        else:
            assert not DAPR_VARS & set(env), f"{rendered} {dep}: Dapr settings in Kafka mode"


def test_in_dapr_mode_the_event_service_keeps_its_kafka_login_for_its_dead_letters():
    env = _env("dapr", "todo-event-service")
    assert env["KAFKA_SASL_USERNAME"]["value"] == "todo-event-service"
    assert "secretKeyRef" in env["KAFKA_SASL_PASSWORD"]["valueFrom"]


def test_in_dapr_mode_keda_watches_the_group_the_sidecars_consume_in():
    (component,) = objects("dapr", "Component")
    group = {i["name"]: i.get("value") for i in component["spec"]["metadata"]}["consumerGroup"]
    (so,) = objects("dapr", "ScaledObject")
    assert so["spec"]["triggers"][0]["metadata"]["consumerGroup"] == group
    acls = one("dapr", "KafkaUser", "todo-dapr")["spec"]["authorization"]["acls"]
    assert {"type": "group", "name": group, "patternType": "literal"} in [a["resource"] for a in acls]


def test_the_dapr_transport_changes_nothing_but_the_services_transport_settings():
    def without_transport(name):
        out = []
        for obj in rendering(name):
            if obj["kind"] == "Deployment":
                obj = copy.deepcopy(obj)
                for c in obj["spec"]["template"]["spec"]["containers"]:
                    c["env"] = [e for e in c["env"] if e["name"] not in set(TRANSPORT_VAR.values()) | DAPR_VARS]
            out.append(obj)
        return out

    assert without_transport("dapr") == without_transport("doks")


def test_the_console_token_comes_from_a_secret_and_the_console_scrapes_the_backend(rendered):
    service = one(rendered, "Deployment", "todo-event-service")
    app = next(c for c in containers(service) if c["name"] == "todo-event-service")
    env = {e["name"]: e for e in app["env"]}
    backend = one(rendered, "Service", "todo-backend")
    port = backend["spec"]["ports"][0]["port"]
    assert env["CONSOLE_BACKEND_METRICS_URL"]["value"] == f"http://todo-backend:{port}/metrics"
    token = env.get("CONSOLE_ADMIN_TOKEN")
    if rendered == "local":
        assert token is None, "the local values leave the console read-only"
    else:
        assert token["valueFrom"]["secretKeyRef"] == {"name": "todo-console", "key": "token"}
