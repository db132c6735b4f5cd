"""The gateway as a Model Context Protocol server (issue 27): tools and an inbox resource for AI agents, over
Streamable HTTP at /mcp (``endpoint.py``) and over stdio (``wa-gateway mcp``, ``stdio_proxy.py``, which forwards
to a running gateway's /mcp). Every tool calls the gateway's public API with the caller's key (``gateway_api.py``),
so scoping, validation and idempotency are the API's own; the rails (tools per key, a durable send budget, dry
run) are in ``caller.py`` and ``sending.py``."""
