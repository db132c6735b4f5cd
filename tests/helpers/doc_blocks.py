"""The documentation as data: the pages in reading order, their fenced blocks with the marker each carries,
their links and their headings' anchors (tests/unit/test_doc_links.py, tests/system/test_docs_blocks.py).

A fenced block is one of:

- a command a reader would paste: ``sh`` (also ``bash``, ``shell``), ``console`` (the ``$ `` lines of a
  transcript; the output shown is an example) or ``python``; it runs in the docs test unless marked;
- anything else, named by its language (``text``, ``json``, ...): output or data, never run. A block without
  a language is an error, so a command cannot hide in an unnamed block.

A marker is the HTML comment on the line just above the fence (invisible on the rendered page, plain in
the source):

- ``<!-- not run: WHY -->``: a command that cannot run against a sandbox here (the real WhatsApp, Docker, a
  Kubernetes cluster); WHY is required.
- ``<!-- background: ready when URL [and URL] answer(s) -->``: a program the reader leaves running in a
  terminal of its own (``make sandbox``, a receiver); the test starts it in the background and waits until
  every URL answers over HTTP (any status).
- ``<!-- file: NAME -->``: "save this as NAME": the test writes the block to NAME; a later block runs it.
- ``<!-- printed by: COMMAND -->``: on a ``text`` block: what the background COMMAND prints; the test waits
  until it has printed every line of it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.helpers.stack import REPO

SHELL = {"sh", "bash", "shell"}
COMMANDS = SHELL | {"console", "python"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run|background|file|printed by):\s*(?P<value>.*?)\s*-->\s*$")
ANY_COMMENT = re.compile(r"^\s*<!--(?!.*TEMPORARY NOTICE).*-->\s*$")
URL = re.compile(r"https?://[^\s]+")


def pages() -> list[Path]:
    """README.md, then the site's pages in mkdocs.yml's nav order (the order a reader follows)."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = [next(iter(item.values())) for item in config["nav"]]
    return [REPO / "README.md", *(REPO / "docs" / page for page in nav)]


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # dedented, without the fences
    marker: str | None = None  # "not run", "background", "file", "printed by"
    value: str = ""
    indented: bool = False  # inside a list item: GitHub shows it, the site (mkdocs) shows the fences as text

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"

    def problem(self) -> str | None:
        """Why this block is not in a form the docs test can handle, or None."""
        if self.marker == "unknown":
            return f"an unknown marker {self.value}: not run, background, file or printed by"
        if self.indented:
            return "an indented block (in a list item): the site shows it as text; take it out of the list"
        if not self.lang:
            return "a block without a language: name it (sh, console, python; text or json for output)"
        if self.marker == "not run" and not self.value:
            return "`not run:` must say why"
        if self.marker == "background" and (self.lang not in SHELL or not URL.findall(self.value)):
            return "`background:` goes on a sh block and names the URLs that answer once it is ready"
        if self.marker == "file" and not re.fullmatch(r"[\w.-]+", self.value):
            return "`file:` names a file in the current directory"
        if self.marker == "printed by" and self.lang != "text":
            return "`printed by:` goes on a text block"
        if self.marker is None and self.lang == "console" and not self.commands():
            return "a console block without `$ ` command lines"
        return None

    def commands(self) -> str:
        """What a reader would type: the whole block, or a transcript's ``$ `` lines."""
        if self.lang != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))

    @property
    def runs(self) -> bool:
        return self.lang in COMMANDS and self.marker not in ("not run", "file")


def blocks(doc: Path) -> list[Block]:
    found: list[Block] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        lang, indented = opening["lang"], bool(opening["indent"])
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        block = Block(doc, i + 1, lang, textwrap.dedent("\n".join(lines[i + 1:end])) + "\n", indented=indented)
        marker = MARKER.match(lines[i - 1]) if i else None
        if marker:
            block.marker, block.value = marker["kind"], marker["value"]
        elif i and ANY_COMMENT.match(lines[i - 1]):
            block.marker, block.value = "unknown", lines[i - 1].strip()
        found.append(block)
        i = end + 1
    return found


# --- links and anchors ---------------------------------------------------------------------------------
LINK = re.compile(r"(?<!\\)\[(?:[^\]]*)\]\((?P<target>[^)\s]+)\)")
CODE_SPAN = re.compile(r"`[^`]*`")


def prose(doc: Path) -> list[tuple[int, str]]:
    """The lines outside fenced blocks, with their numbers, inline code blanked out."""
    out, fenced = [], False
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if FENCE.match(line) or (fenced and line.strip() == "```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, CODE_SPAN.sub("``", line)))
    return out


def links(doc: Path) -> list[tuple[int, str]]:
    return [(number, m["target"]) for number, line in prose(doc) for m in LINK.finditer(line)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (mkdocs' toc makes the same for the headings these docs use)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose(doc):
        m = re.match(r"^#{1,6} (.+?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out
