"""What names an outbound message: its WhatsApp id (stable across resends) and the hash of the request that
accepted it (an Idempotency-Key reused for another request is refused), and the media a row references."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


def is_group(recipient: str) -> bool:
    """Whether an outbox recipient (``messages.phone_number``) is a group's jid rather than a phone number."""
    return recipient.endswith("@g.us")


def wa_id_for(message_id: str) -> str:
    """The WhatsApp message id of our message: the same for every resend, so the recipient sees one."""
    return "3EB0" + hashlib.sha256(message_id.encode()).hexdigest()[:18].upper()


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    """A send's media, stored already (service/media/intake.py): what the row references."""

    kind: str
    sha256: str
    mimetype: str
    size: int
    filename: str | None
    ptt: bool
    identity: str  # what the request said of it (``media_identity``): the request hash's part


@dataclass(frozen=True, slots=True)
class OutboundExtra:
    """What a row is besides text or media (issue 25): a location, contact cards, a poll, an action on a message
    (reaction, edit, revoke, read) or on a chat (presence), and a reply's quote. ``content`` is the JSON the row
    keeps (``{"worker": ..., "public": ...}``); ``identity`` what the request asked for (its hash's part: never
    a value the gateway made up, such as a poll's secret); ``ttl`` a shorter life than a message's (presence)."""

    action: str | None
    content: str
    identity: str
    target_id: str | None = None
    reply_to: str | None = None
    ttl: float | None = None


def media_identity(kind: str, source: str, filename: str | None, mimetype: str | None, ptt: bool) -> str:
    """A media as its request named it: its kind, its source (a URL, or the sha256 of the bytes sent), and
    what the caller declared. A URL's identity is known before it is fetched, so a retry with the same
    Idempotency-Key is answered without fetching it again."""
    return json.dumps([kind, source, filename, mimetype, ptt], ensure_ascii=False)


def request_hash(phone_number: str, body: str, media: OutboundMedia | str | None = None,
                 extra: str | None = None) -> str:
    """What a request asked for: the same Idempotency-Key with another hash is 409. A text's is as it always
    was; a media's adds its identity (an ``OutboundMedia``, or its ``media_identity``), anything else its
    ``OutboundExtra.identity``."""
    fields: dict[str, Any] = {"phone_number": phone_number, "message": body}
    if media is not None:
        fields["media"] = media if isinstance(media, str) else media.identity
    if extra is not None:
        fields["extra"] = extra
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


