"""The events of the log: each as a webhook body and an SSE event's data, and as ``GET /events`` replays them
(with their ``seq``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from service.http.models.messages import InboundMessageOut


class StatusParticipant(BaseModel):
    phone_number: str | None


class MessageStatusData(BaseModel):
    id: str
    whatsapp_id: str
    phone_number: str | None  # null for a group's message (group_id)
    status: str  # sent, delivered, read or failed
    reason: str | None
    group_id: str | None = None  # a message to a group (absent otherwise)
    # a group message's receipt from one member (absent on the message's own status): whose it is
    participant: StatusParticipant | None = None


class SessionUnreachable(BaseModel):
    cause: str | None  # dns, refused, tls, proxy, timeout, network
    detail: str | None  # the system error


class SessionStatusData(BaseModel):
    state: str | None
    phone_number: str | None
    last_error: str | None
    unreachable: SessionUnreachable | None = None  # only in state whatsapp_unreachable
    pairing_code: str | None = None  # only in state pairing_code: the code to type on the phone (ABCD-EFGH)


class MessageUndecryptableData(BaseModel):
    whatsapp_id: str
    phone_number: str | None
    lid: str | None
    chat_jid: str
    timestamp: str | None  # the sender's
    attempts: int  # copies that failed to decrypt (the first and the contact's resends)
    error: str | None  # the last decryption error


class MessageActionData(BaseModel):
    """What a contact did to a message: that message by its WhatsApp id and, when we know it, by ours."""

    whatsapp_id: str  # the reaction's, edit's or revoke's own WhatsApp id
    message_id: str | None  # ours (GET /messages/{id}) when the message is one we know
    message_whatsapp_id: str | None  # the WhatsApp id of the message it acts on
    direction: str | None  # "in": the contact's own message, "out": one we sent
    phone_number: str | None
    lid: str | None
    chat_jid: str
    timestamp: str | None  # the sender's


class MessageReactionData(MessageActionData):
    emoji: str  # "" when the contact removed its reaction


class MessageEditedData(MessageActionData):
    text: str | None  # the new text (the stored message keeps every version in ``edits``)


class PresenceData(BaseModel):
    phone_number: str | None
    lid: str | None
    chat_jid: str
    state: str  # composing, recording, paused, available, unavailable
    last_seen: str | None  # when the contact shares it


class PollVoteData(BaseModel):
    """A contact's vote on a poll we sent, decrypted with the poll's secret."""

    poll_id: str | None  # ours (GET /messages/{id}) when the poll is one we sent and still know
    whatsapp_id: str | None  # the poll's WhatsApp id
    vote_whatsapp_id: str  # the vote's own WhatsApp id (a changed vote is a new one)
    phone_number: str | None
    lid: str | None
    chat_jid: str
    options: list[str] | None  # the option names chosen, in the poll's order; [] withdraws; null: see error
    timestamp: str | None  # the sender's
    error: Literal["poll_unknown", "undecryptable"] | None = None  # only when options is null


class ChatReadData(BaseModel):
    """The account's own phone (or another of its devices) read a contact's messages."""

    phone_number: str | None
    lid: str | None
    chat_jid: str
    message_ids: list[str]  # ours (GET /messages/{id}) of those we stored
    whatsapp_ids: list[str]  # every one read, by WhatsApp's id
    timestamp: str | None  # when the phone read them


class GroupPerson(BaseModel):
    """Someone in a group: either may be unknown (WhatsApp names some members only by their LID)."""

    phone_number: str | None
    lid: str | None


class GroupParticipantsData(BaseModel):
    """Who joined, left or changed role in a group, as WhatsApp told the account's devices."""

    group_id: str
    # add, remove (by an admin), promote, demote, leave (by themselves), create (a group made with the account in it)
    action: Literal["add", "remove", "promote", "demote", "leave", "create"]
    participants: list[GroupPerson]
    by: GroupPerson | None  # who did it, when WhatsApp says
    subject: str | None = None  # create only: the new group's subject
    timestamp: str | None


class GroupUpdatedData(BaseModel):
    """A group's settings changed: only the fields that changed are present."""

    group_id: str
    subject: str | None = None
    description: str | None = None  # null: removed
    announce: bool | None = None  # only admins may send
    restrict: bool | None = None  # only admins may change the group's settings
    by: GroupPerson | None
    timestamp: str | None


class _Event(BaseModel):
    id: str  # evt_...; also the webhook-id header
    account: str
    timestamp: str


class MessageReceivedEvent(_Event):
    """A contact's message, once."""

    type: Literal["message.received"]
    data: InboundMessageOut


class MessageStatusEvent(_Event):
    """A message we sent became sent, delivered, read or failed."""

    type: Literal["message.status"]
    data: MessageStatusData


class SessionStatusEvent(_Event):
    """The WhatsApp session changed state."""

    type: Literal["session.status"]
    data: SessionStatusData


class MessageUndecryptableEvent(_Event):
    """A contact's message that could not be decrypted, even after retry receipts and resends."""

    type: Literal["message.undecryptable"]
    data: MessageUndecryptableData


class MediaStoredEvent(_Event):
    """A contact's media was downloaded: ``data.media.url`` serves it (the message as GET /messages/{id} shows it)."""

    type: Literal["media.stored"]
    data: InboundMessageOut


class MediaFailedEvent(_Event):
    """A contact's media could not be downloaded (``data.media.error`` says why); it will not be tried again."""

    type: Literal["media.failed"]
    data: InboundMessageOut


class MessageReactionEvent(_Event):
    """A contact reacted to a message (its own or ours), or removed its reaction (``emoji`` "")."""

    type: Literal["message.reaction"]
    data: MessageReactionData


class MessageEditedEvent(_Event):
    """A contact edited its message: ``data.text`` is the new text, ``data.message_id`` the message it changes."""

    type: Literal["message.edited"]
    data: MessageEditedData


class MessageRevokedEvent(_Event):
    """A contact deleted its message for everyone: the stored message is marked (``revoked_at``)."""

    type: Literal["message.revoked"]
    data: MessageActionData


class PresenceEvent(_Event):
    """A contact is typing (``composing``), recording a voice note, stopped, came online or went away."""

    type: Literal["presence"]
    data: PresenceData


class PollVoteEvent(_Event):
    """A contact voted on a poll we sent (or withdrew its vote: ``options`` []); ``options`` null when the vote could
    not be read (``error``)."""

    type: Literal["poll.vote"]
    data: PollVoteData


class ChatReadEvent(_Event):
    """The account's own phone read a contact's messages (the chat is read on WhatsApp's side too)."""

    type: Literal["chat.read"]
    data: ChatReadData


class GroupParticipantsEvent(_Event):
    """Participants were added, removed, promoted or demoted, left, or a group was created with the account in it
    (the account itself removed: ``remove`` naming the account's own number)."""

    type: Literal["group.participants"]
    data: GroupParticipantsData


class GroupUpdatedEvent(_Event):
    """A group's subject, description or settings changed."""

    type: Literal["group.updated"]
    data: GroupUpdatedData


class LoggedMessageReceived(MessageReceivedEvent):
    seq: int


class LoggedMessageStatus(MessageStatusEvent):
    seq: int


class LoggedSessionStatus(SessionStatusEvent):
    seq: int


class LoggedMessageUndecryptable(MessageUndecryptableEvent):
    seq: int


class LoggedMediaStored(MediaStoredEvent):
    seq: int


class LoggedMediaFailed(MediaFailedEvent):
    seq: int


class LoggedMessageReaction(MessageReactionEvent):
    seq: int


class LoggedMessageEdited(MessageEditedEvent):
    seq: int


class LoggedMessageRevoked(MessageRevokedEvent):
    seq: int


class LoggedPresence(PresenceEvent):
    seq: int


class LoggedPollVote(PollVoteEvent):
    seq: int


class LoggedChatRead(ChatReadEvent):
    seq: int


class LoggedGroupParticipants(GroupParticipantsEvent):
    seq: int


class LoggedGroupUpdated(GroupUpdatedEvent):
    seq: int


# One replayed event, told apart by its ``type``.
LoggedEvent = Annotated[
    LoggedMessageReceived | LoggedMessageStatus | LoggedSessionStatus | LoggedMessageUndecryptable | LoggedMediaStored
    | LoggedMediaFailed | LoggedMessageReaction | LoggedMessageEdited | LoggedMessageRevoked | LoggedPresence
    | LoggedPollVote | LoggedChatRead | LoggedGroupParticipants | LoggedGroupUpdated,
    Field(discriminator="type"),
]


class EventPage(BaseModel):
    """``GET /events``: oldest first; ask again with ``after=next_after``."""

    events: list[LoggedEvent]
    next_after: int
