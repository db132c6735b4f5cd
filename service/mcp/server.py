"""The MCP server: the SDK's low-level ``Server`` with the gateway's tools and its inbox resource.

The low-level server rather than the SDK's decorator framework because what a session lists depends on who
calls: every handler reads the caller (key, scope, rails) from the HTTP request that carried the message
(``Context``, put in the ASGI scope by ``endpoint.py``), so one server serves every key, and a tool the caller
may not use is neither listed nor callable. The arguments are checked here against the listed schema (the
SDK's own check keeps one cache for all callers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jsonschema
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from service import __version__
from service.mcp import inbox
from service.mcp.caller import Caller
from service.mcp.gateway_api import GatewayApi, ToolError
from service.mcp.sending import send_message
from service.mcp.tool_schemas import DESCRIPTIONS, SCHEMAS
from service.mcp.tools import Budget, Call, Tool, registry
from service.mcp_names import ALL_TOOLS

SCOPE_KEY = "wa.mcp"  # the ASGI scope's entry with the request's Context
INSTRUCTIONS = (
    "A WhatsApp account through wa-gateway. Start with status (is the account linked and connected?), then "
    "list_chats and read_messages to see conversations; send_message writes (text, location or poll; give an "
    "idempotency_key). Chat ids are phone numbers like +14155550123 or group ids like 120363041234567890@g.us. "
    "Subscribe to the resource wa://accounts/<account>/inbox to be told when a message comes in."
)


@dataclass(frozen=True, slots=True)
class Context:
    """What one MCP request carries besides its message: the caller, its API, its budget."""

    caller: Caller
    api: GatewayApi
    budget: Budget
    max_message_chars: int
    wake: Callable[[], asyncio.Event] | None  # the notifier's current event, for subscriptions


class _Server(Server[inbox.Subscriptions, Any]):
    def get_capabilities(self, notification_options: NotificationOptions,
                         experimental_capabilities: dict[str, dict[str, Any]]) -> types.ServerCapabilities:
        capabilities = super().get_capabilities(notification_options, experimental_capabilities)
        if capabilities.resources is not None:  # the SDK says subscribe=False whatever is registered
            capabilities.resources.subscribe = True
        return capabilities


def tool_definition(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name, description=DESCRIPTIONS[tool.name], inputSchema=SCHEMAS[tool.name],
        annotations=types.ToolAnnotations(readOnlyHint=tool.read_only, destructiveHint=tool.destructive,
                                          idempotentHint=tool.idempotent, openWorldHint=not tool.read_only),
    )


def _error(code: str, message: str, status: int = 400) -> types.CallToolResult:
    payload = {"error": {"status": status, "code": code, "message": message}}
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(payload))],
                                structuredContent=payload, isError=True)


def check_arguments(name: str, arguments: dict[str, Any]) -> str | None:
    """The first problem of ``arguments`` against the tool's schema (None: they conform)."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[name])
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def build_server(context: Callable[[], Context]) -> Server[Any, Any]:
    """The server; ``context()`` is the current request's Context."""
    tools = registry(send_message)

    @asynccontextmanager
    async def session_lifespan(_: Server[Any, Any]) -> AsyncIterator[inbox.Subscriptions]:
        subscriptions = inbox.Subscriptions()
        try:
            yield subscriptions
        finally:
            subscriptions.close()  # the session ended: so do its subscriptions

    server = _Server("wa-gateway", version=__version__, instructions=INSTRUCTIONS, lifespan=session_lifespan)
    sdk: Any = server  # the SDK's low-level decorators carry no types: registered through Any

    async def list_tools() -> list[types.Tool]:
        allowed = context().caller.rails.tools
        return [tool_definition(tools[name]) for name in ALL_TOOLS if name in allowed]

    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        ctx = context()
        if name not in ctx.caller.rails.tools:  # not listed for this key: as if it did not exist
            return _error("unknown_tool", f"No tool named {name!r} (see tools/list).", 404)
        problem = check_arguments(name, arguments)
        if problem is not None:
            return _error("invalid_arguments", problem)
        account = arguments.get("account") or ctx.caller.default_account
        call = Call(ctx.api, ctx.caller, account, arguments, ctx.budget, ctx.max_message_chars)
        try:
            answer = await tools[name].handler(call)
        except ToolError as exc:
            return _error(exc.code, exc.message, exc.status)
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(answer))],
                                    structuredContent=answer)

    sdk.list_tools()(list_tools)
    sdk.call_tool(validate_input=False)(call_tool)
    _resources(server, context)
    return server


def _resource_error(exc: ToolError) -> McpError:
    code = -32002 if exc.status == 404 else types.INVALID_PARAMS
    return McpError(types.ErrorData(code=code, message=f"{exc.code}: {exc.message}"))


def _resources(server: Server[inbox.Subscriptions, Any], context: Callable[[], Context]) -> None:
    sdk: Any = server
    async def list_resources() -> list[types.Resource]:
        account = context().caller.default_account
        return [types.Resource(uri=AnyUrl(inbox.uri_of(account)), name=f"{account} inbox",
                               description="The latest inbound messages of the account, newest first; subscribe "
                                           "to be told when one comes in.", mimeType="application/json")]

    async def list_templates() -> list[types.ResourceTemplate]:
        return [types.ResourceTemplate(uriTemplate=inbox.TEMPLATE, name="inbox", mimeType="application/json",
                                       description="An account's latest inbound messages, newest first.")]

    async def read_resource(uri: AnyUrl) -> list[ReadResourceContents]:
        ctx = context()
        try:
            page = await inbox.recent(ctx.api, inbox.account_of(str(uri)))
        except ToolError as exc:
            raise _resource_error(exc) from None
        return [ReadResourceContents(json.dumps(page), "application/json")]

    async def subscribe(uri: AnyUrl) -> None:
        ctx = context()
        request = server.request_context
        subscriptions: inbox.Subscriptions = request.lifespan_context

        async def notify(updated: str) -> None:
            await request.session.send_resource_updated(AnyUrl(updated))

        try:
            await subscriptions.subscribe(str(uri), ctx.api, notify, ctx.wake)
        except ToolError as exc:
            raise _resource_error(exc) from None

    async def unsubscribe(uri: AnyUrl) -> None:
        server.request_context.lifespan_context.unsubscribe(str(uri))

    sdk.list_resources()(list_resources)
    sdk.list_resource_templates()(list_templates)
    sdk.read_resource()(read_resource)
    sdk.subscribe_resource()(subscribe)
    sdk.unsubscribe_resource()(unsubscribe)
