"""The gateway and the worker agree on every state, status and reason that crosses between them.

The worker's lists are node_worker/src/states.js (read by running node, as the worker itself would load
them); the gateway's are service/states.py. A state, receipt status or send answer the worker can produce
and the gateway does not know fails here, before a user meets it as a 500 or a silently dropped receipt.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from service import states
from tests.helpers.stack import REPO

STATES_JS = REPO / "node_worker" / "src" / "states.js"


@pytest.fixture(scope="module")
def worker() -> dict:
    node = shutil.which("node")
    assert node, "node is needed (the worker's runtime)"
    script = (f"import({json.dumps(STATES_JS.as_uri())}).then(m => console.log(JSON.stringify({{"
              "WORKER_STATES: m.WORKER_STATES, MESSAGE_STATUSES: m.MESSAGE_STATUSES, SEND_FAILURES: m.SEND_FAILURES,"
              " SEND_RETRY_CODES: m.SEND_RETRY_CODES, DEFAULT_ACCOUNT: m.DEFAULT_ACCOUNT,"
              " UNREACHABLE_CAUSES: m.UNREACHABLE_CAUSES, MEDIA_DOWNLOAD_ERRORS: m.MEDIA_DOWNLOAD_ERRORS,"
              " PAIRING_ERRORS: m.PAIRING_ERRORS})))")
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def test_every_worker_state_is_a_gateway_state_and_back(worker):
    assert set(worker["WORKER_STATES"]) == set(states.WORKER_STATES)
    assert states.UNKNOWN_STATE not in worker["WORKER_STATES"]  # the gateway's own word for "could not ask"


def test_every_unreachable_cause_is_known_to_the_gateway(worker):
    assert set(worker["UNREACHABLE_CAUSES"]) == set(states.UNREACHABLE_CAUSES)


def test_every_receipt_status_moves_a_message_or_is_ignored_on_purpose(worker):
    known = set(states.WORKER_RECEIPTS) | set(states.WORKER_RECEIPTS_IGNORED)
    assert set(worker["MESSAGE_STATUSES"]) == known
    assert set(states.WORKER_RECEIPTS.values()) <= set(states.MESSAGE_STATUSES)


def test_every_send_answer_is_a_failure_with_a_reason_or_a_retry(worker):
    assert set(worker["SEND_FAILURES"]) == set(states.WORKER_SEND_FAILURES)
    assert set(states.WORKER_SEND_FAILURES.values()) <= set(states.FAILURE_REASONS)
    assert set(worker["SEND_RETRY_CODES"]) == set(states.WORKER_SEND_RETRIES)
    assert not set(states.WORKER_SEND_FAILURES) & set(states.WORKER_SEND_RETRIES)


def test_every_media_download_answer_is_known_to_the_gateway(worker):
    assert set(worker["MEDIA_DOWNLOAD_ERRORS"]) == set(states.WORKER_MEDIA_DOWNLOAD_ERRORS)


def test_every_pairing_refusal_is_known_to_the_gateway(worker):
    assert set(worker["PAIRING_ERRORS"]) == set(states.WORKER_PAIRING_ERRORS)


def test_the_default_account_is_the_same_word(worker):
    assert worker["DEFAULT_ACCOUNT"] == states.DEFAULT_ACCOUNT
