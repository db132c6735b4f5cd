"""One phone number rule on both sides of the gateway/worker boundary, pinned by shared vectors.

The gateway side is tested here; the worker side in node_worker/test/phone.test.js reads the same
tests/fixtures/phone_numbers.json. The worker's list of country calling codes must equal the one
``phonenumbers`` knows, or the two sides would disagree about a number.
"""

import json
import shutil
import subprocess

import pytest

from service.http.validation import InvalidInput, country_calling_codes, phone_number
from tests.helpers.stack import REPO

VECTORS = json.loads((REPO / "tests" / "fixtures" / "phone_numbers.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["why"] for v in VECTORS])
def test_gateway_normalises_or_refuses_each_vector(vector):
    if vector["e164"] is None:
        with pytest.raises(InvalidInput):
            phone_number(vector["input"])
    else:
        assert phone_number(vector["input"]) == vector["e164"]
        # What the gateway produces is a fixed point: it would accept its own output unchanged.
        assert phone_number(vector["e164"]) == vector["e164"]


@pytest.mark.parametrize("digits", ["\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
                                    "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"])
def test_unicode_digits_are_refused_with_a_message_that_says_which_digits(digits):
    """phonenumbers would quietly turn these into ASCII digits; the worker's rule would refuse them."""
    with pytest.raises(InvalidInput, match="digits 0-9 only"):
        phone_number("+" + digits)


def test_vectors_cover_both_answers_and_the_contract_example():
    assert any(v["e164"] is None for v in VECTORS) and any(v["e164"] for v in VECTORS)
    assert {"input": "+1234567890", "e164": "+1234567890"}.items() <= VECTORS[0].items()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_worker_knows_the_same_country_calling_codes():
    script = "import('./src/phone.js').then(m => console.log(JSON.stringify(m.COUNTRY_CALLING_CODES)))"
    out = subprocess.run(["node", "--input-type=module", "-e", script], cwd=REPO / "node_worker",
                         capture_output=True, text=True, timeout=30, check=True).stdout
    expected = country_calling_codes()
    assert json.loads(out) == expected, (
        "node_worker/src/phone.js COUNTRY_CALLING_CODES is out of date with phonenumbers; set it to:\n"
        + json.dumps(expected)
    )
