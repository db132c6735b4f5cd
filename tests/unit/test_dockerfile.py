"""No Docker engine runs here, so check what can be checked without one: the Dockerfile parsed into
whole instructions (continuation lines joined, comments dropped), as Docker reads it."""

from __future__ import annotations

import json

from tests.helpers.dockerfile import INSTRUCTIONS, instructions, parse
from tests.helpers.stack import REPO


def test_the_parser_joins_continuations():
    parsed = parse("RUN a \\\n  # note\n  && b\nHEALTHCHECK --interval=1s \\\n  CMD [\"x\"]\n")
    assert parsed == [("RUN", "a && b"), ("HEALTHCHECK", '--interval=1s CMD ["x"]')]


def test_every_copied_path_exists():
    for line in instructions("COPY"):
        *sources, _dest = line.split()
        for src in sources:
            assert (REPO / src).exists(), src


def test_it_runs_the_shipped_supervisord_conf_through_the_launcher():
    assert "conf/ conf/" in instructions("COPY")
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["/app/.venv/bin/wa-gateway"]
    assert json.loads(instructions("CMD")[0]) == ["run"]
    launcher = (REPO / "service" / "programs" / "launcher.py").read_text()
    assert 'CONF = REPO_ROOT / "conf" / "supervisord.conf"' in launcher
    # The launcher is PID 1: it forwards stop signals to supervisord and reaps orphans.
    assert "os.waitpid(-1, 0)" in launcher and "signal.SIGTERM" in launcher


def test_port_volume_user_and_healthcheck():
    assert instructions("EXPOSE") == ["3001"]
    env = " ".join(instructions("ENV"))
    assert "WA_PORT=3001" in env and "WA_DATA_DIR=/app/whatsapp_data" in env
    assert instructions("VOLUME") == ["/app/whatsapp_data"]
    assert instructions("USER") == ["wa"]
    (healthcheck,) = instructions("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    assert "/health/live" in command
    base = instructions("FROM")[0]
    assert base.startswith("node:20"), base


def test_the_baileys_patch_is_applied_at_install_and_dev_packages_pruned_after():
    runs = instructions("RUN")
    install = next(i for i, args in enumerate(runs) if "npm ci" in args)
    assert "npm prune --omit=dev" in runs[install]
    copies = [args for instruction, args in INSTRUCTIONS if instruction in {"COPY", "RUN"}]
    patches = next(i for i, args in enumerate(copies) if args.startswith("node_worker/patches/"))
    assert patches < copies.index(runs[install])
