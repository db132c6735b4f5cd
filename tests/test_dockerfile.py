"""No Docker engine runs here, so check what can be checked without one."""

import re

from tests.stack import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.M)]


def test_every_copied_path_exists():
    for line in instructions("COPY"):
        *sources, _dest = line.split()
        for src in sources:
            assert (REPO / src).exists(), src


def test_it_runs_the_shipped_supervisord_conf_through_the_launcher():
    assert "COPY conf/ conf/" in DOCKERFILE
    assert instructions("ENTRYPOINT") == ['["/app/.venv/bin/wa-gateway"]']
    assert instructions("CMD") == ['["run"]']
    launcher = (REPO / "service" / "launcher.py").read_text()
    assert 'CONF = REPO_ROOT / "conf" / "supervisord.conf"' in launcher
    assert "os.execve(supervisord" in launcher  # supervisord becomes PID 1


def test_port_volume_user_and_healthcheck():
    assert instructions("EXPOSE") == ["3001"]
    assert "WA_PORT=3001" in DOCKERFILE
    assert instructions("VOLUME") == ["/app/whatsapp_data"]
    assert "WA_DATA_DIR=/app/whatsapp_data" in DOCKERFILE
    assert instructions("USER") == ["wa"]
    assert "/health/live" in instructions("HEALTHCHECK")[0] or "/health/live" in DOCKERFILE
    # dev packages (patch-package) are needed to install, not to run: pruned after the patched install
    assert "npm prune --omit=dev" in DOCKERFILE
    assert DOCKERFILE.index("COPY node_worker/patches/") < DOCKERFILE.index("RUN cd node_worker && npm ci")
    base = instructions("FROM")[0]
    assert base.startswith("node:20"), base
