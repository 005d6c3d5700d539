"""docs/service.md: "an `id` may be a string of at most 64 characters, a number within
±(2^63 − 1) or null", and an E-stop's id is echoed only when it is one every method accepts
("id": null otherwise; the E-stop runs). A number written as a float (1e300, -1e19) was held
to no range: the request ran and its id was echoed, while the integer 2^63 was refused."""

from __future__ import annotations

import json

import pytest
import websockets

from smpdevice.service.auth import Role

from .conftest import run


async def _answers(url: str, token: str, messages: list[str]) -> list[dict]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                                  "params": {"token": token}}))
        await ws.recv()
        out = []
        for text in messages:
            await ws.send(text)
            while True:  # skip notifications (pen.state after the E-stop)
                answer = json.loads(await ws.recv())
                if "method" not in answer:
                    break
            out.append(answer)
        return out


WIDE = ["1e300", "-1e300", "1e19", "-1e19", "9.3e18", "9223372036854775808.0"]
WITHIN = [("9.2e18", 9.2e18), ("-9.2e18", -9.2e18), ("2.5", 2.5), ("1e3", 1000.0)]


def test_a_float_id_beyond_the_int64_range_is_refused(service):
    ping, estop = run(_answers(service.url, service.token(Role.VIEWER), [
        '{"jsonrpc":"2.0","id":1e300,"method":"rpc.ping"}',
        '{"jsonrpc":"2.0","id":1e19,"method":"pen.estop"}',
    ]))
    assert ping.get("error", {}).get("code") == -32600, ping  # as an id of 65 characters is
    assert ping["id"] is None, ping
    assert estop["id"] is None, estop  # the E-stop runs; its id is not echoed
    assert "result" in estop, estop


@pytest.mark.parametrize("ident", WIDE)
def test_every_float_beyond_the_range_is_refused_and_never_echoed(service, ident):
    (ping,) = run(_answers(service.url, service.token(Role.VIEWER), [
        f'{{"jsonrpc":"2.0","id":{ident},"method":"rpc.ping"}}']))
    assert ping.get("error", {}).get("code") == -32600, ping
    assert ping["id"] is None, ping
    assert "2**63" in ping["error"]["message"], ping


def test_a_float_within_the_range_is_an_id_as_before(service):
    answers = run(_answers(service.url, service.token(Role.VIEWER), [
        f'{{"jsonrpc":"2.0","id":{text},"method":"rpc.ping"}}' for text, _ in WITHIN]))
    assert [a.get("id") for a in answers] == [value for _, value in WITHIN], answers
    assert all("result" in a for a in answers), answers
