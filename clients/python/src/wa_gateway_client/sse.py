"""Server-Sent Events, parsed as the WHATWG HTML standard says (§9.2.6): fields ``id``, ``event``, ``data``
(several ``data`` lines join with newlines), comments (``:``) ignored, an event dispatched at a blank line.

Fed raw chunks rather than lines: a message event can be far longer than aiohttp's line limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str | None
    id: str | None


async def parse_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    buffer = b""
    event, last_id = "message", None
    data: list[str] = []
    async for chunk in chunks:
        buffer += chunk
        while True:
            # Lines end in CRLF, LF or CR; a CR at the very end may be half of a CRLF: wait for more.
            cut = _line_end(buffer)
            if cut is None:
                break
            end, skip = cut
            line, buffer = buffer[:end].decode("utf-8", "replace"), buffer[end + skip:]
            if line == "":
                if data:
                    yield ServerSentEvent(event=event, data="\n".join(data), id=last_id)
                event, data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value or "message"
            elif name == "id" and "\0" not in value:
                last_id = value


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr == -1 or (lf != -1 and lf < cr):
        return (lf, 1) if lf != -1 else None
    if cr == len(buffer) - 1:
        return None
    return (cr, 2) if buffer[cr + 1:cr + 2] == b"\n" else (cr, 1)
