"""docs/service.md: before rpc.hello "a message over 8 KiB is refused unread (`-32001`,
`"id": null`) and counts as a failed hello", counted as the 256 KiB cap is, in UTF-8 bytes as
on the wire. A hello of 5,075 characters, 10,075 bytes on the wire, was read (answered -32602
with its id): the cap counted characters."""

from __future__ import annotations

import json

import pytest
import websockets

from .conftest import run


async def _answer(url: str, text: str | bytes) -> dict:
    async with websockets.connect(url) as ws:
        await ws.send(text)
        return json.loads(await ws.recv())


def _hello(token: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                       "params": {"token": token}}, ensure_ascii=False)


@pytest.mark.parametrize("char, count", [("é", 5000), ("€", 2800), ("😀", 2100)])
def test_a_hello_over_8_kib_on_the_wire_is_refused_unread(service, char, count):
    text = _hello(char * count)
    assert len(text.encode("utf-8")) > 8 * 1024 > len(text)
    answer = run(_answer(service.url, text))
    assert answer.get("error", {}).get("code") == -32001, answer
    assert answer["id"] is None, answer
    assert "8192 bytes" in answer["error"]["message"], answer


def test_a_hello_under_8_kib_on_the_wire_is_read(service):
    text = _hello("é" * 4000)  # 8,000+ bytes, under the cap: read, its token refused
    assert len(text.encode("utf-8")) < 8 * 1024
    answer = run(_answer(service.url, text))
    assert answer.get("error", {}).get("code") == -32602, answer
    assert answer["id"] == 1, answer


def test_a_binary_hello_over_8_kib_is_refused_unread(service):
    answer = run(_answer(service.url, _hello("é" * 5000).encode("utf-8")))
    assert answer.get("error", {}).get("code") == -32001, answer
    assert answer["id"] is None, answer
