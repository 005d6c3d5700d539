"""The wire under the clients of `smp serve` (client.py): the errors a call raises, a request's
JSON text checked before it is sent, where the service is (`service_url`) and opening the
WebSocket to it, with the reasons a connection fails or closes said in words.
"""

from __future__ import annotations

import json
import os
from typing import Any

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from smpdevice.errors import SmpError
from smpdevice.service.limits import MAX_ANSWER_BYTES, MAX_MESSAGE_BYTES

RPC_PATH = "/rpc"  # server.RPC_PATH (not imported: the server pulls in the pen's modules)


class ServiceError(SmpError):
    """The service answered with an error (code, message) or cannot be reached."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class ServiceGone(ServiceError):
    """The connection to the service closed (the service stopped, restarted or was killed, or
    the network dropped). `reason` says which, as far as the close tells; `str()` says it in
    a sentence."""

    def __init__(self, reason: str | None) -> None:
        self.reason = reason or "no reason given"
        super().__init__(f"the connection to the service closed: {self.reason}")


def _closed_why(ws: ClientConnection) -> str:
    """What the close says, in words (never a bare None)."""
    code, reason = ws.close_code, ws.close_reason
    if code is None:
        return "no close frame: the service was killed or the network dropped"
    if code == 1001:
        return "1001 going away: the service is shutting down"
    return f"code {code}" + (f": {reason}" if reason else "")


# The widest integer the service parses (rpc.MAX_INT; not imported: see RPC_PATH).
MAX_INT = 2**63 - 1


def encode_request(ident: int, method: str, params: dict[str, Any]) -> str:
    """The request's JSON text, or ServiceError for params the service could only answer with
    a parse error carrying no id (so no call could ever get its answer): NaN or infinity (not
    JSON), an integer beyond +-(2**63 - 1); or for a request over the service's size cap
    (sent, it would be refused anyway)."""
    def wide(value: Any) -> bool:
        if isinstance(value, dict):
            return any(wide(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(wide(v) for v in value)
        return isinstance(value, int) and not -MAX_INT <= value <= MAX_INT

    if wide(params):
        raise ServiceError(f"{method}: an integer in the params is beyond +-(2**63 - 1); send "
                           "a number within the parameter's range")
    try:
        text = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params},
                          allow_nan=False)
    except ValueError:
        raise ServiceError(f"{method}: a number in the params is NaN or infinite, which JSON "
                           "cannot carry; send a finite number") from None
    except TypeError as exc:
        raise ServiceError(f"{method}: the params are not JSON ({exc})") from None
    size = len(text.encode())
    if size > MAX_MESSAGE_BYTES:  # refused here: the connection (and a driver's pen) is kept
        raise ServiceError(f"{method}: the request is {size} bytes, over the service's cap of "
                           f"{MAX_MESSAGE_BYTES} bytes (max_message_bytes); send less")
    return text


def service_url(url: str | None = None) -> str:
    if url:
        return url
    env = os.environ.get("SMP_SERVICE", "").strip()
    if env:
        return env
    from smpdevice.paths import data_dir
    from smpdevice.service.server import SOCKET_NAME

    return f"unix://{data_dir() / SOCKET_NAME}"


async def _open(url: str) -> ClientConnection:
    # The service never sends more than MAX_ANSWER_BYTES (it answers an error instead).
    options: dict[str, Any] = dict(max_size=MAX_ANSWER_BYTES, compression=None, open_timeout=10)
    try:
        if url.startswith("unix://"):
            return await unix_connect(url.removeprefix("unix://"), uri="ws://localhost/rpc",
                                      **options)
        if not url.startswith(("ws://", "wss://")):
            raise ServiceError(f"service URL {url!r} must start with ws://, wss:// or unix://")
        return await connect(url, **options)
    except InvalidStatus as exc:  # an HTTP answer, not a WebSocket: a wrong path, a proxy
        raise ServiceError(f"cannot reach the pen service at {url}: the server answered HTTP "
                           f"{exc.response.status_code}, not a WebSocket. The service's URL "
                           f"ends in {RPC_PATH} (ws://HOST:PORT{RPC_PATH}, as `smp serve` "
                           "prints it); set SMP_SERVICE or --service to it") from None
    except (TimeoutError, OSError, InvalidHandshake, InvalidURI, ValueError) as exc:
        # ValueError: a port beyond 65535 or a broken [IPv6] literal, found by urlparse
        why = str(exc) or type(exc).__name__  # an SSL handshake cut short says nothing
        tls = (" (a wss:// URL needs `smp serve --tls-cert`; without it the service is ws://)"
               if url.startswith("wss://") else "")
        raise ServiceError(f"cannot reach the pen service at {url} ({why}){tls}; is `smp serve` "
                           "running? Set SMP_SERVICE or --service to its URL "
                           f"(ws://HOST:PORT{RPC_PATH} or unix:///PATH)") from None
