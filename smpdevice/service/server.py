"""`smp serve`'s servers: WebSocket on loopback (plus the console's static files) and a
WebSocket over a Unix socket (0600) in the data directory. Same JSON-RPC on both.

Binding anything but loopback needs `allow_remote` and TLS (cert and key): the pen must not
be reachable in clear text from the network (the MVM ventilator lesson). Browser connections
must come from the console's own origin (no cross-site WebSocket to the pen); other clients
send no Origin header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import structlog
from websockets.asyncio.server import Server, serve, unix_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from smpdevice.control.aio import run_in_new_thread
from smpdevice.errors import SmpError
from smpdevice.service.auth import SOCKET_NAME as SOCKET_NAME  # re-exported (client, runner)
from smpdevice.service.auth import Role, remove_stale_socket
from smpdevice.service.connection import serve_client
from smpdevice.service.deadman import stop_and_disarm
from smpdevice.service.door import Door, accept_backlog, door_connection
from smpdevice.service.limits import MAX_INBOUND_BYTES
from smpdevice.service.pen_service import PenService
from smpdevice.service.shutdown import (
    CLOSE_TIMEOUT_S as CLOSE_TIMEOUT_S,  # re-exported: the bound docs/service.md states
)
from smpdevice.service.shutdown import TELL_WITHIN_S, closed_within, cut, tell_clients

log = structlog.get_logger("smpdevice.service")

RPC_PATH = "/rpc"
WEB = resources.files("smpdevice") / "ui" / "web"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
DATA_FILES = {"demo-profile.yaml": "session1_base_density.yaml"}
# The longest path a Unix socket takes (sun_path, less its NUL): 107 bytes on Linux, 103 on
# macOS and the BSDs.
SUN_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
# How long a connection may take over its opening handshake (TLS included); then rpc.hello
# has connection.HELLO_TIMEOUT_S. Idle connections are also capped (door.py).
OPEN_TIMEOUT_S = 5.0
TLS_FILE_MAX_BYTES = 1024 * 1024  # a PEM certificate chain or key is a few KiB
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
    def wildcard(self) -> bool:
        """0.0.0.0 or ::, every address of the station."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def check_remote(listen: Listen, allow_remote: bool, tls: ssl.SSLContext | None) -> None:
    if not listen.loopback and not allow_remote:
        raise ServeError(f"refusing to listen on {listen.host}: the service binds loopback "
                         "only. Remote use needs --allow-remote with --tls-cert and --tls-key")
    if not listen.loopback and tls is None:
        raise ServeError("--allow-remote needs TLS: give --tls-cert and --tls-key")


def preflight(listen: Listen, socket_path: Path | None, *, allow_remote: bool = False,
              tls: ssl.SSLContext | None = None) -> None:
    """What would refuse the start, checked before the pen is opened: a listen address not
    allowed, a second `smp serve` on this data directory (its socket answers), a socket path
    too long, a listen port in use. A pen opened only to be closed again would be handshaken
    (a needle found running stopped) while another process may own it."""
    check_remote(listen, allow_remote, tls)
    if socket_path is not None:
        size = len(os.fsencode(socket_path))
        if size > SUN_PATH_MAX:
            raise ServeError(f"cannot open the Unix socket {socket_path}: its path is {size} "
                             f"bytes, over the {SUN_PATH_MAX} a Unix socket allows. Give "
                             "--no-socket, or a shorter SMP_DATA_DIR")
        remove_stale_socket(socket_path)  # "another `smp serve` already listens on ..."
    if listen.port != 0:
        _probe_port(listen)


def _probe_port(listen: Listen) -> None:
    """Bind (not listen) every address the listener will: the port taken is told now. The real
    bind may still lose a race; start() then refuses the same way and the pen is closed."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError:
        return  # an unknown host: the listener's own error names it
    for family, kind, proto, _name, address in infos:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue  # a family this host lacks: asyncio's listener skips it too
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
        except OSError as exc:
            raise _listen_error(listen, exc) from None
        finally:
            probe.close()


def _listen_error(listen: Listen, exc: OSError) -> ServeError:
    return ServeError(f"cannot listen on {listen.host}:{listen.port}: {exc.strerror}. "
                      "Pick another --listen port")


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServeError("TLS needs both --tls-cert and --tls-key")
    from smpdevice.loader import LoadError, read_capped

    for what, path in (("certificate", cert), ("key", key)):
        try:  # a regular file only: loading a FIFO or a device waits for ever, unkillable
            read_capped(path, TLS_FILE_MAX_BYTES)
        except LoadError as exc:
            raise ServeError(f"cannot load the TLS {what}: {exc}") from None
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
        check_remote(listen, allow_remote, tls)
        self.service = service
        self.listen = listen
        self.socket_path = socket_path
        self.tls = tls
        self.port = listen.port
        self._ws: Server | None = None
        self._unix: Server | None = None
        self._closed = False
        self.door: Door | None = None  # made by start()
        self.dir_lock: IO[bytes] | None = None  # the data directory's serve.lock (runner.py)

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self._host_for_url()}:{self.port}{RPC_PATH}"

    def console_url(self, role: Role = Role.TECHNICIAN) -> str:
        scheme = "https" if self.tls else "http"
        token = self.service.tokens[role]
        # In the fragment: a browser never sends it to the server or in a Referer. Encoded:
        # a token may hold any printable ASCII (& # % + ...); the page decodes it (app.js).
        return (f"{scheme}://{self._host_for_url()}:{self.port}/"
                f"#token={quote(token, safe='')}")

    def _host_for_url(self) -> str:
        return f"[{self.listen.host}]" if ":" in self.listen.host else self.listen.host

    def _origins(self) -> set[str]:
        scheme = "https" if self.tls else "http"
        hosts = {self._host_for_url()}
        if self.listen.loopback or self.listen.wildcard:  # all addresses: loopback's too
            hosts |= {"localhost", "127.0.0.1", "[::1]"}
        return {f"{scheme}://{h}:{self.port}" for h in hosts}

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        """The console's own origin: one of `_origins()`, or, over TLS, the origin the browser
        reached this service at (the Origin's host and port are the request's Host), so a
        console opened remotely by the station's name or address connects. A cross-site page
        never has an Origin equal to the Host it sends, except by DNS rebinding, which TLS
        stops: the certificate does not name the attacker's host. Without TLS (loopback only)
        the names are fixed, for that reason."""
        if origin in self._origins():
            return True
        if self.tls is None or host is None:
            return False
        authority = _authority(origin, "https")
        return authority is not None and authority == _host_authority(host, 443)

    async def _process_request(self, connection: Any, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == RPC_PATH:
            origins = request.headers.get_all("Origin")
            hosts = request.headers.get_all("Host")
            if origins and (len(origins) > 1 or len(hosts) > 1
                            or not self._origin_allowed(origins[0], hosts[0] if hosts else None)):
                # two Origin headers: which one the browser meant is unknown, so neither counts
                log.warning("refused a WebSocket from another origin",
                            origin=", ".join(origins)[:100])
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
        """Listen. If it fails, the caller still calls close(), which closes the pen."""
        await self.service.start()
        # No per-message compression (a few hundred bytes per message: deflate only adds
        # latency); asyncio sets TCP_NODELAY on every TCP socket, so no Nagle delay either.
        # max_size: requests over the cap (but under this) are still read, to be answered
        # -32600 with the connection kept (limits.py says why there is a transport bound).
        # One door for both servers: their connections share the process's descriptors.
        self.door = Door()
        options: dict[str, Any] = dict(max_size=MAX_INBOUND_BYTES, max_queue=16,
                                       compression=None, ping_interval=5, ping_timeout=10,
                                       close_timeout=CLOSE_TIMEOUT_S, server_header=None,
                                       open_timeout=OPEN_TIMEOUT_S, backlog=accept_backlog(),
                                       create_connection=door_connection(self.door))

        async def over_tcp(ws: Any) -> None:
            await serve_client(self.service, ws, "ws")

        async def over_unix(ws: Any) -> None:
            await serve_client(self.service, ws, "unix")

        try:
            self._ws = await serve(over_tcp, self.listen.host, self.listen.port, ssl=self.tls,
                                   process_request=self._process_request, **options)
        except OSError as exc:
            raise _listen_error(self.listen, exc) from None
        self.port = self._ws.sockets[0].getsockname()[1]
        if self.socket_path is not None:
            path = self.socket_path
            remove_stale_socket(path)
            try:
                self._unix = await unix_serve(over_unix, str(path), **{
                    **options, "create_connection": door_connection(self.door, "unix")})
                os.chmod(path, 0o600)  # the data directory is 0700 as well
            except OSError as exc:
                raise ServeError(f"cannot open the Unix socket {path}: {exc.strerror or exc}. "
                                 "Give --no-socket, or a shorter SMP_DATA_DIR") from None
        log.info("service listening", url=self.url, socket=str(self.socket_path))

    async def close(self) -> None:
        """Stop the needle and disarm first, then tell the clients, then close the
        connections, then the pen.

        New connections are refused first; the pen is brought to rest before anything waits
        on a client (a safety stop never depends on the link). Then the session stopped ends
        its pass and every client hears it (`session.pass`, `session.result`: "the service is
        shutting down"), within TELL_WITHIN_S; only then are the connections closed (1001; a
        hung one holds its closing handshake for CLOSE_TIMEOUT_S). Idempotent; also after a
        start() that failed halfway."""
        if self._closed:
            return
        self._closed = True
        servers = [server for server in (self._ws, self._unix) if server is not None]
        for server in servers:
            server.close(close_connections=False)  # no new connections; the open ones stay
        await self._stop_pen("the service is shutting down")
        await tell_clients(self.service, TELL_WITHIN_S)
        closing = {asyncio.ensure_future(ws.close(1001)) for server in servers
                   for ws in server.connections}  # going away, as websockets' own close
        for server in servers:
            await closed_within(server, CLOSE_TIMEOUT_S, self.service, self.door)
        for task in closing:
            task.cancel()  # done by now, or cut with its connection
        cut(list(self.door.open) if self.door is not None else [])  # not one left behind
        if self.socket_path is not None and self._unix is not None:
            self.socket_path.unlink(missing_ok=True)
        await self.service.close()
        if self.dir_lock is not None:  # last: the pen is closed, another service may start
            self.dir_lock.close()

    async def _stop_pen(self, why: str) -> None:
        """The session is told to stop (it stops its own needle, as on session.stop), the
        driver is dropped (its needle stopped and the pen disarmed, as when it disconnects);
        whatever still moves is stopped here."""
        service = self.service
        service.closing = True  # first: nothing received from now on moves the pen again
        service.work.request_stop(cause=why)  # the pass it stops says so (not "stop requested")
        holder = service.lease.holder()

        def stop() -> None:
            if holder is not None:
                service.watchdog.driver_gone(holder, why)
            if not service.work.stopped_itself():
                stop_and_disarm(service.pen, why)

        # A thread of its own, never the loop's default pool: nothing queued there (a
        # client's call held on a locked log) can be ahead of the needle's stop (review 18).
        await asyncio.wrap_future(run_in_new_thread(stop, name="smp-close-stop"))


def _authority(origin: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) of an Origin of `scheme`, or None (another scheme, malformed)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != scheme or not parts.hostname or parts.path or parts.query:
        return None
    return parts.hostname.lower(), port if port is not None else 443


def _host_authority(host: str, default_port: int) -> tuple[str, int] | None:
    """(host, port) of a Host header ("name:port", "[v6]:port", "name")."""
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.path or parts.username is not None:
        return None
    return parts.hostname.lower(), port if port is not None else default_port


def _plain(status: int, reason: str, text: str) -> Response:
    body = text.encode()
    return Response(status, reason, Headers([("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))]), body)
