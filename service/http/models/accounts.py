"""Accounts (``/accounts``) and the API keys scoped to one (``/accounts/{account}/keys``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, StrictBool, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from service.http import validation
from service.http.models.base import RequestModel, checked, iso
from service.mcp_names import ALL_TOOLS

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


class McpRails(RequestModel):
    """A scoped key's own MCP rails (service/mcp/): each field given replaces the WA_MCP_* default for this key."""

    tools: list[StrictStr] | None = None  # the MCP tools its sessions list and may call
    send_budget_per_hour: StrictInt | None = None  # messages it may send through MCP in any hour
    dry_run: StrictBool | None = None  # its MCP sends only validate and answer what they would send

    field_codes: ClassVar[dict[str, str]] = {f: "invalid_mcp" for f in ("tools", "send_budget_per_hour", "dry_run")}
    field_hints: ClassVar[dict[str, str]] = {"tools": f"a list of tool names ({', '.join(ALL_TOOLS)})",
                                             "send_budget_per_hour": "an integer from 0 to 100000",
                                             "dry_run": "true or false"}

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(name not in ALL_TOOLS for name in value):
            raise PydanticCustomError("wa:invalid_mcp", f"mcp.tools may list {', '.join(ALL_TOOLS)}.")
        return None if value is None else list(dict.fromkeys(value))

    @field_validator("send_budget_per_hour")
    @classmethod
    def _budget(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 100000:
            raise PydanticCustomError("wa:invalid_mcp", "mcp.send_budget_per_hour must be 0 to 100000.")
        return value


class KeyCreateRequest(RequestModel):
    """``POST /accounts/{account}/keys``: an optional label to tell keys apart in a listing, and the key's own
    MCP rails (``mcp``; the WA_MCP_* defaults where left out)."""

    label: StrictStr | None = None
    mcp: McpRails | None = None

    field_codes: ClassVar[dict[str, str]] = {"label": "invalid_label", "mcp": "invalid_mcp"}
    field_hints: ClassVar[dict[str, str]] = {"label": "a string of at most 100 characters",
                                             "mcp": 'an object with "tools", "send_budget_per_hour", "dry_run"'}

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return None if value is None else checked(validation.key_label, value)


class KeyUpdateRequest(RequestModel):
    """``PATCH /accounts/{account}/keys/{id}``: the key's MCP rails, replaced whole (a field left out, or ``mcp``
    null, gives that rail back to its WA_MCP_* default)."""

    mcp: McpRails | None

    field_codes: ClassVar[dict[str, str]] = {"mcp": "invalid_mcp"}
    field_hints: ClassVar[dict[str, str]] = {"mcp": 'an object with "tools", "send_budget_per_hour", "dry_run"'}


class KeyOut(BaseModel):
    """A scoped key as listed: never its value or its hash."""

    id: str
    prefix: str  # the key's first characters, to recognise it
    label: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    mcp: McpRails | None = None  # its own MCP rails (absent: the WA_MCP_* defaults)

    @classmethod
    def from_row(cls, row: dict[str, Any], rails: dict[str, Any] | None = None) -> KeyOut:
        """``rails``: the store's (service/store/mcp_rails.py key_rails) for this key, if it has any."""
        mcp = None if rails is None else McpRails.model_construct(
            tools=rails["tools"], send_budget_per_hour=rails["send_budget"], dry_run=rails["dry_run"])
        return cls(id=row["id"], prefix=row["prefix"], label=row["label"], created_at=iso(row["created_at"]),
                   revoked_at=iso(row["revoked_at"]), last_used_at=iso(row["last_used_at"]), mcp=mcp)

    def shown(self) -> dict[str, Any]:
        """As the API answers it: ``mcp`` only for a key with rails of its own, and only the rails it sets."""
        shown = self.model_dump(exclude={"mcp"})
        return shown if self.mcp is None else {**shown, "mcp": self.mcp.model_dump(exclude_none=True)}


class KeyCreated(BaseModel):
    """``POST /accounts/{account}/keys`` (201): the only answer that shows the key itself."""

    id: str
    key: str
    prefix: str
    label: str | None
    account: str
    created_at: str
    mcp: McpRails | None = None  # the MCP rails set on the key (none: the WA_MCP_* defaults)

    @classmethod
    def from_row(cls, row: dict[str, Any], *, key: str, mcp: McpRails | None = None) -> KeyCreated:
        return cls(id=row["id"], key=key, prefix=row["prefix"], label=row["label"], account=row["account"],
                   created_at=iso(row["created_at"]), mcp=mcp)


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
