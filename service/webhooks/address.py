"""Where a webhook may be sent: the address policy for endpoints the API creates (a tenant's, and the admin's).

The policy itself is shared with the media fetch and lives in ``service/address_policy.py`` (what is refused,
how a name is resolved once and the connection pinned to the checked addresses); this module keeps the names the
webhook modules import. ``WA_WEBHOOK_ALLOW_PRIVATE`` is the webhooks' allowlist; the operator's own
``WA_WEBHOOK_URL`` endpoints are trusted and not checked (see docs/webhooks.md, "Webhook addresses").
"""

from __future__ import annotations

from service.address_policy import (
    IP,
    NAT64,
    REFUSED_REASON,
    AddressPolicy,
    AddressRefused,
    Lookup,
    embedded_v4,
    forbidden,
    guarded_connector,
    guarded_resolver,
    normalize_host,
    parse_allowlist,
    system_lookup,
)

__all__ = [
    "IP", "NAT64", "REFUSED_REASON", "AddressPolicy", "AddressRefused", "Lookup", "embedded_v4", "forbidden",
    "guarded_connector", "guarded_resolver", "normalize_host", "parse_allowlist", "system_lookup",
]
