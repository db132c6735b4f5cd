"""wa-gateway-client: the Python client of wa-gateway (a self-hosted WhatsApp gateway).

``AsyncClient`` (aiohttp) and ``Client`` (blocking) have one method per endpoint, typed results
(``wa_gateway_client.models``) and one exception class per error code (``wa_gateway_client.errors``);
``WebhookVerifier`` checks a webhook's signature in a backend. The ``wa-gateway-client`` command (also
``wa-gateway <command>`` on the gateway's host) is the CLI and the deployment self-test.
"""

from . import errors, models
from .client import AsyncAccount, AsyncClient
from .errors import GatewayError
from .media import Download
from .retry import Retry
from .sync import Account, Client
from .webhooks import InvalidSignature, WebhookVerifier

__version__ = "0.1.0"
__all__ = [
    "Account", "AsyncAccount", "AsyncClient", "Client", "Download", "GatewayError", "InvalidSignature", "Retry",
    "WebhookVerifier", "errors", "models",
]
