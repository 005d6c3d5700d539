"""Review 11 (revb) B8: with --allow-remote on every address (TLS), a console page loaded from
the service by the name or address the browser used may open its WebSocket (its E-stop with
it); a page of any other site may not."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from simulators import PenSimulator
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration


def self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("station.example")]),
                           False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def remote_service(sim, tmp_path):
    cert, key = self_signed(tmp_path)
    options = ServiceOptions(port=sim.url, listen="0.0.0.0:0", data_dir=tmp_path / "data",
                             allow_remote=True, tls_cert=cert, tls_key=key,
                             calibration=true_calibration(sim), unix_socket=False)
    with ServiceHandle(options) as handle:
        yield handle


def open_ws(port: int, origin: str) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    async def main() -> str:
        try:
            ws = await ws_connect(f"wss://127.0.0.1:{port}/rpc", ssl=context, origin=origin)
        except InvalidStatus as exc:
            return str(exc.response.status_code)
        await ws.close()
        return "open"
    return asyncio.run(main())


def test_a_remote_console_page_opens_its_websocket(remote_service):
    port = remote_service.server.port
    # the page the browser loaded from https://127.0.0.1:PORT/ (its Host is the same)
    assert open_ws(port, f"https://127.0.0.1:{port}") == "open"


@pytest.mark.parametrize("origin", ["https://evil.example:{port}", "http://127.0.0.1:{port}",
                                    "https://127.0.0.1:1", "null"])
def test_another_sites_page_is_still_refused(remote_service, origin):
    port = remote_service.server.port
    assert open_ws(port, origin.format(port=port)) == "403"


def test_the_origin_is_the_host_the_browser_reached_over_tls_only(remote_service, tmp_path):
    port = remote_service.server.port
    allowed = remote_service.server._origin_allowed
    assert allowed(f"https://station.example:{port}", f"station.example:{port}")
    assert allowed(f"https://[fd00::7]:{port}", f"[fd00::7]:{port}")
    assert allowed("https://station.example", "station.example")  # 443 on both sides
    assert not allowed(f"https://evil.example:{port}", f"station.example:{port}")
    assert not allowed(f"http://station.example:{port}", f"station.example:{port}")
    assert not allowed(f"https://station.example:{port}/x", f"station.example:{port}")
    # Without TLS (loopback only) a Host named by the page proves nothing: a DNS-rebinding
    # page sends its own name as both. The names stay the fixed loopback ones.
    with PenSimulator(seed=5) as sim, ServiceHandle(ServiceOptions(
            port=sim.url, listen="127.0.0.1:0", data_dir=tmp_path / "plain",
            unix_socket=False)) as service:
        plain = service.server
        assert not plain._origin_allowed(f"http://evil.example:{plain.port}",
                                         f"evil.example:{plain.port}")
        assert plain._origin_allowed(f"http://localhost:{plain.port}",
                                     f"localhost:{plain.port}")
