"""The API key store: WA_API_KEY (several, for rotation) or one generated key in the data dir,
created 0600 in a 0700 dir, exactly once even when programs race, and printed by `wa-gateway api-key`.

(The part without a stack is in tests/app/test_api_keys.py.)
"""

import os
import stat

import pytest

from service.auth import admin_key as api_keys
from tests.helpers.stack import wait_for


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.system
def test_locked_by_default_the_sandbox_links_with_the_generated_key(make_stack):
    """No WA_API_KEY: the launcher generates the key before anything starts; the API refuses
    requests without it, /health stays open, and the emulator's phone reads the gateway's QR
    with the first key from the data dir's file (read at use), as a camera at the screen would."""
    from tests.helpers.sandbox import PHONE

    stack = make_stack({"WA_API_KEY": ""}, sandbox=True)
    key_file = stack.data_dir / "api-key"
    key = api_keys.read_key_file(key_file)[0]
    assert mode(key_file) == 0o600 and mode(stack.data_dir) == 0o700
    assert key not in stack.logs()
    # The launcher made it before supervisord started anything, and said where.
    assert f"generated an API key in {key_file}" in stack.logs()
    assert stack.get("/health").status == 200
    assert stack.post("/connect").status == 401
    auth = {"Authorization": f"Bearer {key}"}
    assert stack.post("/connect", headers=auth).json()["state"] == "qr"
    res = stack.emu("POST", "/phone/scan", {"phone_number": PHONE})
    assert res.status == 200, res.raw
    wait_for(lambda: stack.get("/status", headers=auth).json()["state"] == "connected", 30, "connected")
