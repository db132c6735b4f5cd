"""deploy/kubernetes/wa-gateway.yaml and wa-gateway-cluster.yaml (several instances on one PostgreSQL), checked
without a cluster: every object against the Kubernetes OpenAPI JSON
schemas of the oldest and newest supported versions (``kubernetes-validate``, strict: unknown fields fail), then
what no schema knows, read from the code the manifest must agree with: the stop budget, the probe paths from the
gateway's route table, the port, data dir and user from the Dockerfile and the settings, the WA_* names read."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from service.http.views import health
from service.settings import Settings
from tests.helpers.deploy import (
    CLUSTER_FILE,
    CLUSTER_SECRET_VARS,
    FIXED_MB,
    GRACE_MARGIN,
    K8S_FILE,
    K8S_VERSIONS,
    SECRET_VARS,
    SHARD_BUSY_MB,
    SHARD_IDLE_MB,
    below,
    cluster_services,
    container,
    container_env,
    dockerfile_env,
    image_uid,
    mebibytes,
    one,
    pod_environment,
    pod_labels,
    route_table,
    settings_read,
    stop_budget,
)


# --- Kubernetes ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    return [d for d in yaml.safe_load_all(K8S_FILE.read_text()) if d]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(k8s, version):
    assert {o["kind"] for o in k8s} == {"Service", "StatefulSet"}
    for obj in k8s:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {where}: {exc.message}")


def test_one_replica_and_the_objects_fit_together(k8s):
    sts, svc = one(k8s, "StatefulSet"), one(k8s, "Service")
    assert sts["spec"]["replicas"] == 1  # one stack per data dir: see the manifest's header
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    # Service links would set <SERVICE>_PORT=tcp://... in the pod: never in the gateway's WA_ namespace.
    link_prefix = svc["metadata"]["name"].upper().replace("-", "_") + "_"
    if link_prefix.startswith("WA_"):
        assert sts["spec"]["template"]["spec"].get("enableServiceLinks") is False


def test_kubernetes_waits_for_supervisord_to_stop_everything(k8s):
    grace = one(k8s, "StatefulSet")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= stop_budget() + GRACE_MARGIN, (grace, stop_budget())


def test_probes_hit_the_right_health_routes(k8s):
    c, routes = container(k8s), route_table()
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    expected = {"livenessProbe": health.live, "startupProbe": health.live, "readinessProbe": health.ready}
    assert {"livenessProbe", "readinessProbe"} <= c.keys()
    for probe, handler in expected.items():
        if probe not in c:
            continue
        get = c[probe]["httpGet"]
        assert routes.get(("GET", get["path"])) is handler, f"{probe} asks {get['path']}"
        assert port_names.get(get["port"], get["port"]) == int(dockerfile_env()["WA_PORT"])


def test_the_port_is_the_gateways(k8s):
    c, svc = container(k8s), one(k8s, "Service")
    image_port = int(dockerfile_env()["WA_PORT"])
    assert image_port == Settings.from_env({}).port
    assert "WA_PORT" not in container_env(c)
    assert [p["containerPort"] for p in c["ports"]] == [image_port]
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    (service_port,) = svc["spec"]["ports"]
    assert port_names.get(service_port["targetPort"], service_port["targetPort"]) == image_port


def test_data_lives_on_the_claim_and_the_run_dir_is_writable(k8s):
    sts = one(k8s, "StatefulSet")
    pod, c = sts["spec"]["template"]["spec"], container(k8s)
    image_env = dockerfile_env()
    env = {**image_env, **{k: e["value"] for k, e in container_env(c).items() if "value" in e}}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    # the claim is mounted where the image keeps its data (its VOLUME)
    assert mounts.get(image_env["WA_DATA_DIR"]) in claims, mounts
    # The launcher chmods the data and run dirs 0700, which only their owner may do; a volume's root
    # belongs to root (fsGroup lends only the group), so both must be directories inside their volume.
    (data_mount,) = [m for m, name in mounts.items() if name in claims and below(env["WA_DATA_DIR"], m)]
    assert data_mount == image_env["WA_DATA_DIR"]
    scratch = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    assert any(below(env["WA_RUN_DIR"], m) for m, name in mounts.items() if name in scratch | claims), \
        (env["WA_RUN_DIR"], mounts)


def test_the_secrets_come_from_a_secret_and_the_docs_create_it(k8s):
    env = container_env(container(k8s))
    assert "WA_API_KEY" in env
    refs = {}
    for name in SECRET_VARS:
        if name in env:
            assert "value" not in env[name], f"{name} holds a literal value"
            refs[name] = env[name]["valueFrom"]["secretKeyRef"]
    assert not refs["WA_API_KEY"].get("optional", False)  # no key, no start
    assert all(o["kind"] != "Secret" for o in k8s)  # created by the operator, never shipped with a value
    # The header's `kubectl create secret` makes the very Secret and keys the pod reads.
    text = K8S_FILE.read_text()
    created = re.search(r"kubectl create secret generic (\S+)", text)
    assert created, "the manifest does not say how to create its Secret"
    literal_keys = set(re.findall(r"--from-(?:literal|file)=([A-Za-z0-9._-]+)=", text))
    for name, ref in refs.items():
        assert ref["name"] == created.group(1), (name, ref)
        assert ref["key"] in literal_keys, (name, ref)


def test_kubernetes_sets_only_variables_the_programs_read(k8s):
    env = container_env(container(k8s))
    known = settings_read()
    assert set(env) <= known, set(env) - known


def test_it_runs_as_the_images_user_on_a_read_only_root(k8s):
    pod, c = one(k8s, "StatefulSet")["spec"]["template"]["spec"], container(k8s)
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == image_uid() and ctx["fsGroup"] == ctx["runAsGroup"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_memory_covers_the_measured_rss(k8s):
    c = container(k8s)
    shards = int(container_env(c)["WA_WORKER_SHARDS"]["value"])
    resources = c["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= FIXED_MB + shards * SHARD_IDLE_MB
    assert mebibytes(resources["limits"]["memory"]) >= FIXED_MB + shards * SHARD_BUSY_MB
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])


# --- Kubernetes: the cluster (several instances on one PostgreSQL) --------------------------------

@pytest.fixture(scope="module")
def cluster() -> list[dict]:
    return [d for d in yaml.safe_load_all(CLUSTER_FILE.read_text()) if d]


@pytest.fixture(scope="module")
def cluster_secret(secrets) -> dict[str, str]:
    """What the header's ``kubectl create secret`` puts in the Secret (generated values)."""
    return {"api-key": secrets["WA_API_KEY"], "webhook-secret": secrets["WA_WEBHOOK_SECRET"],
            "database-url": "postgresql://wa_gateway:pw@postgres.example.internal:5432/wa_gateway"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_cluster_object_validates_against_the_kubernetes_schema(cluster, version):
    assert sorted(o["kind"] for o in cluster) == ["PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    for obj in cluster:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {where}: {exc.message}")


# The single pod's checks hold for each cluster pod as they are: the stop budget, the probes' routes, only
# WA_* names the programs read (WA_INSTANCE_ID, WA_INSTANCE_URL, WA_LEASE_TTL, WA_DATABASE_URL included),
# the image's user on a read-only root, memory for the measured RSS.
@pytest.mark.parametrize("check", [
    test_kubernetes_waits_for_supervisord_to_stop_everything,
    test_probes_hit_the_right_health_routes,
    test_kubernetes_sets_only_variables_the_programs_read,
    test_it_runs_as_the_images_user_on_a_read_only_root,
    test_memory_covers_the_measured_rss,
], ids=lambda check: check.__name__.removeprefix("test_"))
def test_the_cluster_keeps_the_single_pods_guarantees(cluster, check):
    check(cluster)


def test_the_cluster_runs_several_instances_spread_over_nodes(cluster):
    sts = one(cluster, "StatefulSet")
    assert sts["spec"]["replicas"] >= 2  # one can stop or die while another serves its accounts
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels(cluster).items()
    # the instances' identity is in PostgreSQL: none waits for another to be ready before it starts
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    # A rolling update takes the next pod only once the new one has its share of the accounts back (the
    # holders hand them off after seeing it live for two lease rounds) and readiness has looked at them.
    ttl = float(container_env(container(cluster)).get("WA_LEASE_TTL", {}).get("value", Settings.from_env({}).lease_ttl))
    readiness_period = container(cluster)["readinessProbe"].get("periodSeconds", 10)
    assert sts["spec"].get("minReadySeconds", 0) >= 2 * min(2.0, ttl / 3) + readiness_period
    pod = sts["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod_labels(cluster).items()
    assert pod.get("enableServiceLinks") is False  # both Services are named wa-gateway*: WA_GATEWAY_*


def test_the_disruption_budget_takes_one_instance_at_a_time(cluster):
    pdb = one(cluster, "PodDisruptionBudget")
    # it selects the StatefulSet's pods (every label it asks for, they carry)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(cluster).items()
    assert set(pdb["spec"]["selector"]) == {"matchLabels"}
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    # A pod not ready because an account of its waits for a QR must not block the drain of its node.
    assert pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow"


def test_the_headless_service_names_the_pods(cluster):
    sts, (headless, clients) = one(cluster, "StatefulSet"), cluster_services(cluster)
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]  # <pod>.<serviceName> in DNS
    assert headless["spec"]["selector"].items() <= pod_labels(cluster).items()
    # The owner of an account waiting for its QR is not ready, and /qr is forwarded to it by name.
    assert headless["spec"].get("publishNotReadyAddresses") is True
    assert clients["spec"].get("clusterIP") != "None"
    assert clients["metadata"]["name"] != headless["metadata"]["name"]


def test_readiness_gates_the_clients_service(cluster):
    c, (_, clients) = container(cluster), cluster_services(cluster)
    assert route_table().get(("GET", c["readinessProbe"]["httpGet"]["path"])) is health.ready
    # every instance answers for every account: clients go to the ready ones only
    assert not clients["spec"].get("publishNotReadyAddresses", False)
    assert clients["spec"]["selector"].items() <= pod_labels(cluster).items()
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    (service_port,) = clients["spec"]["ports"]
    assert port_names.get(service_port["targetPort"], service_port["targetPort"]) == int(dockerfile_env()["WA_PORT"])


def test_the_instance_id_is_the_pod_name_and_its_url_reaches_the_pod(cluster, cluster_secret):
    sts, (headless, _) = one(cluster, "StatefulSet"), cluster_services(cluster)
    raw = container_env(container(cluster))
    assert "value" not in raw["WA_INSTANCE_ID"]
    assert raw["WA_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for ordinal in (0, 1):
        env = pod_environment(cluster, cluster_secret, ordinal)
        pod_name = f"{sts['metadata']['name']}-{ordinal}"
        assert env["WA_INSTANCE_ID"] == pod_name
        url = urlsplit(env["WA_INSTANCE_URL"])
        assert "$" not in env["WA_INSTANCE_URL"], env["WA_INSTANCE_URL"]  # every reference expanded
        # <pod>.<headless service>[.<namespace>.svc[.<cluster domain>]]: the pod's own DNS name
        labels = url.hostname.split(".")
        assert labels[:2] == [pod_name, headless["metadata"]["name"]], url.hostname
        assert len(labels) <= 3 or labels[3] == "svc", url.hostname
        container_ports = [p["containerPort"] for p in container(cluster)["ports"]]
        assert url.scheme == "http" and url.port in container_ports and url.port == Settings.from_env({}).port


def test_every_secret_comes_from_the_secret_the_header_creates(cluster):
    env = container_env(container(cluster))
    text = CLUSTER_FILE.read_text()
    created = re.search(r"kubectl create secret generic (\S+)", text)
    assert created, "the manifest does not say how to create its Secret"
    literal_keys = set(re.findall(r"--from-(?:literal|file)=([A-Za-z0-9._-]+)=", text))
    for name in CLUSTER_SECRET_VARS:
        if name not in env:
            continue
        assert "value" not in env[name], f"{name} holds a literal value"
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == created.group(1) and ref["key"] in literal_keys, (name, ref)
    assert all(o["kind"] != "Secret" for o in cluster)
    # no database URL (and its password) inlined in any other variable either
    assert not [e["name"] for e in env.values() if "postgres" in e.get("value", "")]


def test_the_instances_share_the_store_the_api_key_and_the_webhook_secret(cluster):
    """Several instances on one store need WA_DATABASE_URL, and WA_API_KEY and WA_WEBHOOK_SECRET from the
    Secret: otherwise each pod generates its own in its data dir, a client's key works on one instance only
    (and is forwarded to the owner, which does not know it), and webhooks are signed with several secrets."""
    env = container_env(container(cluster))
    for name in CLUSTER_SECRET_VARS:
        assert name in env, f"{name} is not set"
        assert not env[name]["valueFrom"]["secretKeyRef"].get("optional", False), f"{name} is optional"


def test_the_pods_environment_is_a_valid_cluster_configuration(cluster, cluster_secret):
    env = pod_environment(cluster, cluster_secret)
    assert "WA_LEASE_TTL" in env  # set explicitly, with the trade-off beside it
    settings = Settings.from_env(env)  # raises SettingsError on any bad value
    assert settings.database_url == cluster_secret["database-url"]
    assert settings.lease_ttl == float(env["WA_LEASE_TTL"])
    assert settings.instance_id == env["WA_INSTANCE_ID"] and settings.instance_url == env["WA_INSTANCE_URL"]
    assert settings.api_keys == (cluster_secret["api-key"],)
    assert settings.webhook_secrets == (cluster_secret["webhook-secret"],)
    # The data dir holds nothing the cluster needs (the store and the sessions are in PostgreSQL): a
    # directory inside scratch space (the launcher chmods it, which a volume's root would refuse).
    pod, c = one(cluster, "StatefulSet")["spec"]["template"]["spec"], container(cluster)
    scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    for directory in (env["WA_DATA_DIR"], env["WA_RUN_DIR"]):
        assert any(below(directory, m) for m, name in mounts.items() if name in scratch), (directory, mounts)
