"""The Dockerfile parsed into whole instructions (continuation lines joined, comments dropped), as Docker
reads it: for the Dockerfile's own tests and the deploy manifests that must agree with it."""

from tests.helpers.stack import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def parse(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; a trailing backslash continues an instruction on the next line."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            name, _, args = whole.partition(" ")
            result.append((name.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return result


INSTRUCTIONS = parse(DOCKERFILE)


def instructions(name: str) -> list[str]:
    return [args for instruction, args in INSTRUCTIONS if instruction == name]
