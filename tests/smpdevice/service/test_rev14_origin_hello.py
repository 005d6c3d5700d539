"""Review 14 (svc): two small holes at the door of `smp serve`.

- docs/service.md: "a page of another site is refused (403)". A WebSocket request carrying two
  `Origin` headers (one the console's, one another site's) was answered 500 with a traceback
  on the service's terminal (websockets' MultipleValuesError), not 403.
- docs/service.md: "Three failed hellos ... close the connection." A hello refused because it
  asks for a role above its token's (-32001, like an unknown token) was not counted: a
  connection could send it for ever.
"""

from __future__ import annotations

import asyncio
import json
import socket

import websockets

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import WAIT_S

UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def _status(port: int, headers: str, host: str | None = None) -> bytes:
    host_lines = host if host is not None else f"Host: 127.0.0.1:{port}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(f"GET /rpc HTTP/1.1\r\n{host_lines}{UPGRADE}{headers}\r\n".encode())
        return sock.recv(200).split(b"\r\n", 1)[0]


def test_two_origin_headers_are_refused_as_another_origin(service):
    port = int(service.url.rsplit(":", 1)[1].split("/")[0])
    own = f"http://127.0.0.1:{port}"
    assert _status(port, f"Origin: {own}\r\n").endswith(b"101 Switching Protocols")
    for pair in ((own, "http://evil.example"), ("http://evil.example", own), (own, own)):
        line = _status(port, "".join(f"Origin: {o}\r\n" for o in pair))
        assert line.endswith(b"403 Forbidden"), line
    two_hosts = f"Host: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
    line = _status(port, f"Origin: {own}\r\n", host=two_hosts)
    assert not line.endswith(b"101 Switching Protocols"), line


def test_hellos_asking_above_their_token_count_as_failed_hellos(service):
    hello = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                        "params": {"token": service.token(Role.VIEWER), "role": "technician"}})

    async def go() -> tuple[list[int], int | None, str]:
        async with websockets.connect(service.url) as ws:
            codes = []
            try:
                for _ in range(5):
                    await ws.send(hello)
                    answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                    codes.append(answer["error"]["code"])
            except websockets.ConnectionClosed:
                pass
            return codes, ws.close_code, ws.close_reason

    codes, code, reason = asyncio.run(go())
    assert codes == [-32001] * 3, codes  # three refused, then closed
    assert (code, reason) == (1008, "too many failed rpc.hello")
