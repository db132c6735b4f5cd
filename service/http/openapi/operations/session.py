"""The documentation of an account's WhatsApp session: ``/status``, ``/qr``, ``/connect``, ``/disconnect``."""

from __future__ import annotations

from service.http import models
from service.http import qr as qr_drawing
from service.http.openapi.spec import DEFAULT_NOTE, Op, Param
from service.http.route_table import Handler
from service.http.views import qr, session

_QR_CONTENT = {
    "image/png": {"schema": {"type": "string", "contentMediaType": "image/png", "contentEncoding": "binary"}},
    "image/svg+xml": {"schema": {"type": "string", "contentMediaType": "image/svg+xml"}},
    "text/plain": {"schema": {"type": "string"}},
}

OPERATIONS: dict[Handler, Op] = {
    session.status: Op("The WhatsApp session's state", "Session", {200: models.SessionStatus}, worker=True,
                       description=DEFAULT_NOTE),
    qr.qr: Op(
        "The QR code to link the account", "Session", {200: _QR_CONTENT},
        params=(Param("format", "query", {"type": "string", "enum": list(qr_drawing.FORMATS), "default": "png"},
                      "png (image/png), svg (image/svg+xml), terminal (text/plain: the code drawn with Unicode "
                      "half blocks, to print in a terminal) or raw (text/plain: the QR payload itself)."),
                Param("background", "query", {"type": "string", "enum": list(qr_drawing.BACKGROUNDS),
                                              "default": "dark"},
                      "format=terminal only: the terminal's background colour, so that the code reads dark on "
                      "light (plain text cannot set it).")),
        errors={400: ("invalid_format", "invalid_background"), 409: ("qr_unavailable",)}, worker=True,
        headers={200: ("Cache-Control",)},
        description="While the account's state is `qr` (after POST /connect): the code to scan in WhatsApp "
                    "(Linked devices). It changes every 20 s or so; it is a secret while valid, so no cache keeps "
                    "it. In another state: 409 `qr_unavailable` with the `state`. " + DEFAULT_NOTE),
    session.connect: Op("Start the session (and get a QR code or a pairing code)", "Session",
                        {200: models.SessionStatus}, body=models.ConnectRequest, body_optional=True, worker=True,
                        errors={400: ("invalid_phone_number",), 422: ("pairing_code_refused",),
                                429: ("pairing_rate_limited",)},
                        headers={429: ("Retry-After",)},
                        description="Starts the session unless it runs. When not linked it waits (up to "
                                    "WA_CONNECT_QR_WAIT) for the first QR: `qr` and `qr_image`. With "
                                    "`phone_number` (the account's own number) it links by pairing code instead: "
                                    "state `pairing_code` and `pairing_code` (ABCD-EFGH), to type on that phone in "
                                    "WhatsApp (Linked devices, Link with phone number); a session already waiting "
                                    "asks for a new code. A code nobody entered in time leaves the state `stopped` "
                                    "with `last_error` `pairing_code_expired: ...`: POST again for a new one. "
                                    "422 `pairing_code_refused`: WhatsApp would not give a code for that number "
                                    "(not on WhatsApp, or not one it links by code). 429 `pairing_rate_limited` "
                                    "with Retry-After: a new code at most every WA_PAIRING_CODE_INTERVAL seconds "
                                    "and WA_PAIRING_CODES_PER_HOUR an hour per account, or WhatsApp itself refused "
                                    "(too many codes for the number lately; then none is asked for an hour). "
                                    + DEFAULT_NOTE),
    session.disconnect: Op("Log out and unlink the device", "Session", {200: models.DisconnectOut},
                           body=models.DisconnectRequest, body_optional=True, worker=True,
                           description=DEFAULT_NOTE),
}
