"""B8 (review 11): over TLS, `_origin_allowed` accepts an Origin whose (host, port) equals the
request's Host. Odd headers: when neither parses, both sides are None, and None == None."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl

import pytest

from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.test_review11b_origin import self_signed


@pytest.fixture
def remote_service(sim, tmp_path):
    cert, key = self_signed(tmp_path)
    options = ServiceOptions(port=sim.url, listen="0.0.0.0:0", data_dir=tmp_path / "data",
                             allow_remote=True, tls_cert=cert, tls_key=key,
                             calibration=true_calibration(sim), unix_socket=False)
    with ServiceHandle(options) as handle:
        yield handle


def handshake(port: int, host: str, origin: str) -> str:
    """A WebSocket opening over TLS with exactly these Host and Origin headers: the status."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    async def main() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /rpc HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        line = await reader.readline()
        writer.close()
        return line.decode().split()[1]
    return asyncio.run(main())


@pytest.mark.parametrize("host,origin", [
    ("", "null"),                      # no host at all, an opaque origin
    ("a b", "null"),                   # a Host that does not parse
    ("x:99999", "https://y:99999"),    # ports out of range on both sides
    ("user@station.example", "https://evil.example:1:2"),
])
def test_unparseable_origin_and_host_are_refused(remote_service, host, origin):
    allowed = remote_service.server._origin_allowed
    assert not allowed(origin, host), f"Origin {origin!r} with Host {host!r} was allowed"


def test_an_opaque_origin_with_an_empty_host_is_refused_on_the_wire(remote_service):
    assert handshake(remote_service.server.port, "", "null") == "403"


@pytest.mark.parametrize("host,origin,ok", [
    ("STATION.example:{port}", "https://station.example:{port}", True),   # case
    ("station.example.:{port}", "https://station.example.:{port}", True),  # trailing dot
    ("station.example", "https://station.example:443", True),            # 443 omitted
    ("[FD00::7]:{port}", "https://[fd00::7]:{port}", True),               # IPv6, case
    ("station.example.:{port}", "https://station.example:{port}", False),  # not the same name
    ("station.example:{port}", "https://station.example", False),        # another port
    ("u@station.example:{port}", "https://station.example:{port}", False),  # userinfo in Host
])
def test_odd_but_well_formed_hosts(remote_service, host, origin, ok):
    port = remote_service.server.port
    allowed = remote_service.server._origin_allowed
    assert allowed(origin.format(port=port), host.format(port=port)) is ok
