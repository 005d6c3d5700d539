"""Review 14 (svc): a token file the service cannot use is refused at start (docs/service.md:
"a token file that cannot be used" -> one line, exit 2, before the pen is opened), and a
hello's token is judged without a traceback.

A viewer token holding a lone surrogate (json.dumps writes it as the escape "\\ud800", which
json.loads reads back) was accepted: every rpc.hello, any role, then failed with -32603 (the
comparison encoded it), so nobody could E-stop through a service that had started. A viewer
token equal to the technician's gave viewers the technician's role. And a hello presenting a
lone surrogate got -32603 instead of -32001 (unknown token, a failed hello)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from smpdevice.errors import SmpError
from smpdevice.service.auth import Role, role_for
from smpdevice.service.runner import ServiceHandle, ServiceOptions, build
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.test_review11b_startup import silent_pen, was_connected


def _write_tokens(data_dir, viewer: str, operator: str, technician: str) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / "service.tokens.json"
    path.write_text(json.dumps({"viewer": viewer, "operator": operator,
                                "technician": technician}))
    path.chmod(0o600)


@pytest.mark.parametrize("viewer", ["\ud800" + "a" * 30, "\x1b" + "a" * 30, "b" * 32],
                         ids=["lone-surrogate", "control-character", "same-as-technician"])
def test_a_token_file_no_client_can_use_is_refused_before_the_pen_opens(data_dir, viewer):
    _write_tokens(data_dir, viewer, "o" * 32, "b" * 32)
    with silent_pen() as (url, listener):
        with pytest.raises(SmpError, match="token"):
            build(ServiceOptions(port=url, listen="127.0.0.1:0", data_dir=data_dir))
        assert not was_connected(listener), "the pen was opened with an unusable token file"


def test_a_token_that_cannot_be_encoded_matches_no_role():
    tokens = {role: role.label * 8 for role in Role}
    assert role_for(tokens, "\ud800") is None
    assert role_for(tokens, "viewer" * 8) is Role.VIEWER


def test_a_hello_with_a_lone_surrogate_token_is_a_failed_hello_not_an_internal_error(
        sim, data_dir):
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             calibration=true_calibration(sim))

    async def go(url: str) -> dict:
        async with websockets.connect(url) as ws:
            await ws.send('{"jsonrpc":"2.0","id":1,"method":"rpc.hello",'
                          '"params":{"token":"\\ud800"}}')
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    with ServiceHandle(options) as handle:
        answer = asyncio.run(go(handle.url))
    assert answer["error"]["code"] == -32001, answer  # unknown token, not -32603
