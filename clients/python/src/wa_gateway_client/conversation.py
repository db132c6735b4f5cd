"""A conversation (issue 25): reply, react, edit, delete for everyone, mark read, typing, and location, contact
card and poll messages, from any account. Mixed into :class:`AsyncAccount` (and so into the blocking ``Account``).

    sent = await wa.send("+14155550123", "Tuesday works", reply_to=theirs.id)   # quotes their message
    await wa.react(theirs.id, "👍")            # react("...", "") removes the reaction
    await wa.edit(sent.id, "Wednesday works")  # our own sent text, within WhatsApp's 15 minutes
    await wa.revoke(sent.id)                   # deleted for everyone
    await wa.read(theirs.id)                   # blue ticks for it and every earlier message of that chat
    await wa.presence("+14155550123", "composing")
    await wa.send_location("+14155550123", 38.7223, -9.1393, name="Rossio")
    await wa.send_contacts("+14155550123", [("Ana", "+14155550199")])
    await wa.send_poll("+14155550123", "Lunch?", ["Pizza", "Sushi"])

Why it is shaped like this:
- Every action is a message of the gateway's durable outbox with its own id and status (a
  :class:`~wa_gateway_client.models.Message` of ``type`` reaction, edit, revoke, read or presence whose
  ``target_id`` is the message it acts on), so each call makes one Idempotency-Key that every retry of it reuses:
  a retried edit or revoke is never a second one at the contact.
- Nothing is checked here that the gateway checks (emoji, poll sizes, the edit window): its typed errors
  (:class:`errors.InvalidEmoji`, :class:`errors.EditWindowExpired`...) say it once, for every client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .models import Message

if TYPE_CHECKING:
    from .client import AsyncClient

PRESENCE_STATES = ("composing", "recording", "paused", "available", "unavailable")


async def post_message(client: AsyncClient, path: str, *, idempotency_key: str | None, wait: float | None,
                       **request: Any) -> Message:
    """POST something that becomes an outbox message (a send or an action on a message): one Idempotency-Key
    for every attempt, ``?wait=`` when given, the answer as a :class:`Message` (``replayed`` when the key had
    been used)."""
    params = {"wait": f"{wait:g}"} if wait is not None else None
    data, headers = await client.request(
        "POST", path, params=params, headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
        idempotent=True, with_headers=True, **request)
    return Message.model_validate({**data, "replayed": headers.get("Idempotent-Replayed") == "true"})


class ConversationMethods:
    """Actions on messages and the non-text kinds of one account; needs its ``_client`` and ``_p`` (the prefix)."""

    _client: AsyncClient

    def _p(self, path: str) -> str:
        raise NotImplementedError

    async def _send_content(self, phone_number: str, content: dict[str, Any], reply_to: str | None,
                            idempotency_key: str | None, wait: float | None) -> Message:
        body = {"phone_number": phone_number, **content, **({"reply_to": reply_to} if reply_to else {})}
        return await post_message(self._client, self._p("/send"), json=body, idempotency_key=idempotency_key,
                                  wait=wait)

    async def _act(self, message_id: str, action: str, body: dict[str, Any], idempotency_key: str | None,
                   wait: float | None) -> Message:
        path = self._p(f"/messages/{quote(message_id, safe='')}/{action}")
        return await post_message(self._client, path, json=body, idempotency_key=idempotency_key, wait=wait)

    # --- other kinds of message ----------------------------------------------------------------------
    async def send_location(self, phone_number: str, latitude: float, longitude: float, *, name: str | None = None,
                            address: str | None = None, reply_to: str | None = None,
                            idempotency_key: str | None = None, wait: float | None = None) -> Message:
        """A place on the map (``type`` location); ``name`` and ``address`` label it at the contact."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        location.update({k: v for k, v in (("name", name), ("address", address)) if v is not None})
        return await self._send_content(phone_number, {"location": location}, reply_to, idempotency_key, wait)

    async def send_contacts(self, phone_number: str,
                            contacts: Sequence[tuple[str, str] | Mapping[str, str]] | None = None, *,
                            vcards: Sequence[str] | None = None, reply_to: str | None = None,
                            idempotency_key: str | None = None, wait: float | None = None) -> Message:
        """Contact cards (``type`` contacts), 1 to 50: ``contacts`` as ``(name, phone number)`` pairs (or
        ``{"name", "phone_number"}``; the gateway writes the vCard), or ``vcards`` as ready vCard texts."""
        if (contacts is None) == (vcards is None):
            raise ValueError("give exactly one of contacts= or vcards=")
        if vcards is not None:
            return await self._send_content(phone_number, {"vcards": list(vcards)}, reply_to, idempotency_key, wait)
        cards = [dict(c) if isinstance(c, Mapping) else {"name": c[0], "phone_number": c[1]}
                 for c in contacts or ()]
        return await self._send_content(phone_number, {"contacts": cards}, reply_to, idempotency_key, wait)

    async def send_poll(self, phone_number: str, question: str, options: Sequence[str], *, multiple: bool = False,
                        reply_to: str | None = None, idempotency_key: str | None = None,
                        wait: float | None = None) -> Message:
        """A poll (``type`` poll) of 2 to 12 distinct options, single choice unless ``multiple``; the votes come
        back as ``poll.vote`` events (:attr:`Event.poll_vote <wa_gateway_client.models.Event.poll_vote>`)."""
        poll = {"question": question, "options": list(options), "multiple": multiple}
        return await self._send_content(phone_number, {"poll": poll}, reply_to, idempotency_key, wait)

    # --- actions on a message ------------------------------------------------------------------------
    async def react(self, message_id: str, emoji: str, *, idempotency_key: str | None = None,
                    wait: float | None = None) -> Message:
        """React to a message (a contact's or ours) with one emoji; ``""`` removes our reaction."""
        return await self._act(message_id, "reaction", {"emoji": emoji}, idempotency_key, wait)

    async def edit(self, message_id: str, text: str, *, idempotency_key: str | None = None,
                   wait: float | None = None) -> Message:
        """Replace the text of a text message we sent, within WhatsApp's window (:class:`errors.EditWindowExpired`
        after it; :class:`errors.NotOwnMessage`, :class:`errors.NotEditable`, :class:`errors.NotSent`)."""
        return await self._act(message_id, "edit", {"message": text}, idempotency_key, wait)

    async def revoke(self, message_id: str, *, idempotency_key: str | None = None,
                     wait: float | None = None) -> Message:
        """Delete a message we sent for everyone (the contact sees "This message was deleted")."""
        return await self._act(message_id, "revoke", {}, idempotency_key, wait)

    async def read(self, message_id: str, *, idempotency_key: str | None = None,
                   wait: float | None = None) -> Message:
        """Mark a contact's message read, with every earlier unread one of that chat (the sender's blue ticks);
        its ``content["ids"]`` lists them. :class:`errors.NotInbound` for one of ours."""
        return await self._act(message_id, "read", {}, idempotency_key, wait)

    async def presence(self, phone_number: str, state: str, *, idempotency_key: str | None = None,
                       wait: float | None = None) -> Message:
        """Show the contact ``composing`` (typing), ``recording``, ``paused``, or us ``available`` /
        ``unavailable``. Sent with a short time to live: a late typing indicator is worthless."""
        path = self._p(f"/chats/{quote(phone_number, safe='')}/presence")
        return await post_message(self._client, path, json={"state": state}, idempotency_key=idempotency_key,
                                  wait=wait)
