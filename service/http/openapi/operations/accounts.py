"""The documentation of accounts (``/accounts``) and their scoped keys (``/accounts/{account}/keys``)."""

from __future__ import annotations

from service.http import models
from service.http.openapi.spec import Op
from service.http.route_table import Handler
from service.http.views import account_keys as keys
from service.http.views import accounts

OPERATIONS: dict[Handler, Op] = {
    accounts.list_accounts: Op("List the accounts", "Accounts", {200: models.AccountList}),
    accounts.create: Op("Create an account", "Accounts", {201: models.AccountOut}, body=models.AccountCreateRequest,
                        errors={400: ("invalid_account_name", "reserved_account_name", "invalid_proxy_url"),
                                409: ("account_exists", "too_many_accounts")}, writes=True,
                        headers={201: ("Location",)},
                        description="Then POST /accounts/{account}/connect for its QR. `proxy_url`: its own proxy for "
                                    "WhatsApp (`http://[user:pass@]host:port` or `socks5://...`), `\"direct\"` for "
                                    "none although WA_PROXY_URL is set; absent or null: WA_PROXY_URL."),
    accounts.get: Op("One account", "Accounts", {200: models.AccountOut}),
    accounts.update: Op("Change an account's proxy", "Accounts", {200: models.AccountOut},
                        body=models.AccountUpdateRequest, errors={400: ("invalid_proxy_url",)}, writes=True,
                        description="Admin key only. `proxy_url`: a proxy URL, `\"direct\"` for no proxy, null "
                                    "for WA_PROXY_URL. Used from the account's next connection (a connection "
                                    "that is up keeps its way). Shown without credentials as `proxy`."),
    accounts.delete: Op("Delete an account", "Accounts", {200: models.AccountDeleted}, worker=True, writes=True,
                        errors={409: ("default_account",)},
                        description="Logs it out at WhatsApp, removes its data and every row it has in the store."),
    keys.create_key: Op("Make a key scoped to the account", "Keys", {201: models.KeyCreated},
                        body=models.KeyCreateRequest, body_optional=True,
                        errors={400: ("invalid_label", "invalid_mcp")}, writes=True,
                        headers={201: ("Cache-Control",)}, description="The only answer that shows the key."),
    keys.list_keys: Op("List the account's keys", "Keys", {200: models.KeyList}),
    keys.revoke_key: Op("Revoke a key", "Keys", {200: models.KeyOut}, errors={404: ("key_not_found",)}, writes=True),
    keys.update_key: Op("Set a key's MCP rails", "Keys", {200: models.KeyOut}, body=models.KeyUpdateRequest,
                        errors={400: ("invalid_mcp",), 404: ("key_not_found",)}, writes=True,
                        description="Replaces the key's own MCP rails whole: a rail left out (or `mcp` null) is the "
                                    "WA_MCP_* default again. Its MCP sessions follow from their next request."),
}
