"""READ6 items 12, 13: the "not now" codes and the message cap have one home (limits.py): the
service answers them, the Python client and the web console read the same numbers."""

from __future__ import annotations

import re
from pathlib import Path

from smpdevice.service import client, limits, rpc

APP_JS = Path(__file__).resolve().parents[3] / "smpdevice" / "ui" / "web" / "app.js"


def test_the_service_and_its_python_client_share_the_codes_and_the_cap():
    assert (rpc.RATE_LIMITED, rpc.BUSY) == (limits.RATE_LIMITED, limits.BUSY)
    assert client.NOT_REFUSALS == (limits.RATE_LIMITED, limits.BUSY)
    assert rpc.MAX_MESSAGE_BYTES is limits.MAX_MESSAGE_BYTES


def test_the_web_consoles_literals_are_the_python_constants():
    found = re.search(r"const NOT_REFUSALS = \[([^\]]*)\];", APP_JS.read_text(encoding="utf-8"))
    assert found is not None, "app.js no longer names NOT_REFUSALS"
    codes = tuple(int(x) for x in found.group(1).split(","))
    assert codes == (limits.RATE_LIMITED, limits.BUSY)
