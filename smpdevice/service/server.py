"""`smp serve`'s servers: WebSocket on loopback (plus the console's static files) and a
WebSocket over a Unix socket (0600) in the data directory. Same JSON-RPC on both.

Binding anything but loopback needs `allow_remote` and TLS (cert and key): the pen must not
be reachable in clear text from the network (the MVM ventilator lesson). Browser connections
must come from the console's own origin (no cross-site WebSocket to the pen); other clients
send no Origin header.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from websockets.asyncio.server import Server, serve, unix_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from smpdevice.errors import SmpError
from smpdevice.service.auth import SOCKET_NAME as SOCKET_NAME  # re-exported (client, runner)
from smpdevice.service.auth import Role, remove_stale_socket
from smpdevice.service.connection import serve_client
from smpdevice.service.limits import MAX_INBOUND_BYTES
from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")

RPC_PATH = "/rpc"
WEB = resources.files("smpdevice") / "ui" / "web"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
DATA_FILES = {"demo-profile.yaml": "session1_base_density.yaml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class ServeError(SmpError):
    """The service cannot start as asked (address, TLS, socket)."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
            raise ServeError(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:8765; "
                             "port 0 picks a free one)")
        return cls(host.strip("[]"), int(port))

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServeError("TLS needs both --tls-cert and --tls-key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    return context


def _static(path: str) -> tuple[bytes, str] | None:
    name = "index.html" if path in ("/", "") else path.lstrip("/")
    if name in DATA_FILES:  # the demo's profile, for the console's "demo profile" button
        return (resources.files("smpdevice") / "data" / DATA_FILES[name]).read_bytes(), \
            "text/plain; charset=utf-8"
    if "/" in name or name.startswith(".") or Path(name).suffix not in TYPES:
        return None
    item = WEB / name
    if not item.is_file():
        return None
    return item.read_bytes(), TYPES[Path(name).suffix]


class ServiceServer:
    """Start with `await start()`; `url` and `console_url()` say where it is."""

    def __init__(self, service: PenService, *, listen: Listen, socket_path: Path | None,
                 allow_remote: bool = False, tls: ssl.SSLContext | None = None) -> None:
        if not listen.loopback and not allow_remote:
            raise ServeError(f"refusing to listen on {listen.host}: the service binds loopback "
                             "only. Remote use needs --allow-remote with --tls-cert and "
                             "--tls-key")
        if not listen.loopback and tls is None:
            raise ServeError("--allow-remote needs TLS: give --tls-cert and --tls-key")
        self.service = service
        self.listen = listen
        self.socket_path = socket_path
        self.tls = tls
        self.port = listen.port
        self._ws: Server | None = None
        self._unix: Server | None = None

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self._host_for_url()}:{self.port}{RPC_PATH}"

    def console_url(self, role: Role = Role.TECHNICIAN) -> str:
        scheme = "https" if self.tls else "http"
        token = self.service.tokens[role]
        # In the fragment: a browser never sends it to the server or in a Referer.
        return f"{scheme}://{self._host_for_url()}:{self.port}/#token={token}"

    def _host_for_url(self) -> str:
        return f"[{self.listen.host}]" if ":" in self.listen.host else self.listen.host

    def _origins(self) -> set[str]:
        scheme = "https" if self.tls else "http"
        hosts = {self._host_for_url()}
        if self.listen.loopback:
            hosts |= {"localhost", "127.0.0.1", "[::1]"}
        return {f"{scheme}://{h}:{self.port}" for h in hosts}

    async def _process_request(self, connection: Any, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == RPC_PATH:
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self._origins():
                log.warning("refused a WebSocket from another origin", origin=origin[:100])
                return _plain(403, "Forbidden", "WebSocket from another origin refused\n")
            return None
        found = _static(path)
        if found is None:
            return _plain(404, "Not Found", "not found\n")
        body, content_type = found
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                           ("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"),
                           ("X-Content-Type-Options", "nosniff"),
                           ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")])
        return Response(200, "OK", headers, body)

    async def start(self) -> None:
        await self.service.start()
        # No per-message compression (a few hundred bytes per message: deflate only adds
        # latency); asyncio sets TCP_NODELAY on every TCP socket, so no Nagle delay either.
        # max_size: requests over the cap (but under this) are still read, to be answered
        # -32600 with the connection kept (limits.py says why there is a transport bound).
        options: dict[str, Any] = dict(max_size=MAX_INBOUND_BYTES, max_queue=16,
                                       compression=None, ping_interval=5, ping_timeout=10,
                                       server_header=None)

        async def over_tcp(ws: Any) -> None:
            await serve_client(self.service, ws, "ws")

        async def over_unix(ws: Any) -> None:
            await serve_client(self.service, ws, "unix")

        try:
            self._ws = await serve(over_tcp, self.listen.host, self.listen.port, ssl=self.tls,
                                   process_request=self._process_request, **options)
        except OSError as exc:
            raise ServeError(f"cannot listen on {self.listen.host}:{self.listen.port}: "
                             f"{exc.strerror}. Pick another --listen port") from None
        self.port = self._ws.sockets[0].getsockname()[1]
        if self.socket_path is not None:
            remove_stale_socket(self.socket_path)
            self._unix = await unix_serve(over_unix, str(self.socket_path), **options)
            os.chmod(self.socket_path, 0o600)  # the data directory is 0700 as well
        log.info("service listening", url=self.url, socket=str(self.socket_path))

    async def close(self) -> None:
        for server in (self._ws, self._unix):
            if server is not None:
                server.close()
                await server.wait_closed()
        if self.socket_path is not None and self._unix is not None:
            self.socket_path.unlink(missing_ok=True)
        await self.service.close()


def _plain(status: int, reason: str, text: str) -> Response:
    body = text.encode()
    return Response(status, reason, Headers([("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))]), body)
