"""Accounts (``/accounts``) and the API keys scoped to one (``/accounts/{account}/keys``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, StrictStr, field_validator

from service.http import validation
from service.http.models.base import RequestModel, checked, iso

PROXY_HINT = 'a proxy URL (http://[user:pass@]host:port or socks5://...), "direct" or null'


def _proxy(value: str | None) -> str | None:
    return None if value is None else checked(validation.proxy_setting, value)


class AccountCreateRequest(RequestModel):
    """``POST /accounts``: a new account's name (``validation.account_name``) and, optionally, its own proxy
    for the WhatsApp connection (absent or null: WA_PROXY_URL; ``"direct"``: none)."""

    name: StrictStr
    proxy_url: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"name": "invalid_account_name", "proxy_url": "invalid_proxy_url"}
    field_hints: ClassVar[dict[str, str]] = {"name": f"a string like {validation.ACCOUNT_NAME_EXAMPLE}",
                                             "proxy_url": PROXY_HINT}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return checked(validation.account_name, value)

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        return _proxy(value)


class AccountUpdateRequest(RequestModel):
    """``PATCH /accounts/{account}``: its own proxy (a URL, ``"direct"`` for none, null for WA_PROXY_URL),
    used from the account's next connection."""

    proxy_url: StrictStr | None

    field_codes: ClassVar[dict[str, str]] = {"proxy_url": "invalid_proxy_url"}
    field_hints: ClassVar[dict[str, str]] = {"proxy_url": PROXY_HINT}

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        return _proxy(value)


class ProxyOut(BaseModel):
    """The proxy of the account's WhatsApp connection, without credentials."""

    url: str | None  # scheme://[***@]host:port; null: a direct connection
    source: Literal["account", "global"]  # its own proxy_url (a URL or "direct"), or WA_PROXY_URL (or none)


class KeyCreateRequest(RequestModel):
    """``POST /accounts/{account}/keys``: an optional label to tell keys apart in a listing."""

    label: StrictStr | None = None

    field_codes: ClassVar[dict[str, str]] = {"label": "invalid_label"}
    field_hints: ClassVar[dict[str, str]] = {"label": "a string of at most 100 characters"}

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return None if value is None else checked(validation.key_label, value)


class KeyOut(BaseModel):
    """A scoped key as listed: never its value or its hash."""

    id: str
    prefix: str  # the key's first characters, to recognise it
    label: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyOut:
        return cls(id=row["id"], prefix=row["prefix"], label=row["label"], created_at=iso(row["created_at"]),
                   revoked_at=iso(row["revoked_at"]), last_used_at=iso(row["last_used_at"]))


class KeyCreated(BaseModel):
    """``POST /accounts/{account}/keys`` (201): the only answer that shows the key itself."""

    id: str
    key: str
    prefix: str
    label: str | None
    account: str
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any], *, key: str) -> KeyCreated:
        return cls(id=row["id"], key=key, prefix=row["prefix"], label=row["label"], account=row["account"],
                   created_at=iso(row["created_at"]))


class AccountOut(BaseModel):
    """An account with its WhatsApp state (null while its worker does not answer)."""

    name: str
    shard: int
    created_at: str | None
    state: str | None
    connected: bool | None
    phone_number: str | None
    proxy: ProxyOut


class AccountList(BaseModel):
    accounts: list[AccountOut]


class AccountDeleted(BaseModel):
    name: str
    deleted: bool
    unlinked: bool


class KeyList(BaseModel):
    keys: list[KeyOut]
