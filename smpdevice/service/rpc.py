"""JSON-RPC 2.0 framing for the service: strict parsing, typed errors, rate limits.

Every message is checked before anything runs: size first (over the cap: refused unread); then,
for an authenticated connection, the E-stop scan (`estop_scan`: an E-stop runs whatever else
the message holds, so it skips the checks below); then JSON (no NaN/Infinity, no numbers too
large to be finite, no integers beyond +-(2**63 - 1), bounded nesting), the request's shape,
then the method's params against its JSON Schema (`schema.METHODS`). Each failure is one
JSON-RPC error whose message says what was wrong and what to send instead.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from smpdevice.service.estop_scan import ESTOP, find_estop
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.limits import BUSY as BUSY
from smpdevice.service.limits import MAX_MESSAGE_BYTES
from smpdevice.service.limits import RATE_LIMITED as RATE_LIMITED
from smpdevice.service.schema import MAX_ID_CHARS, METHODS

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
REFUSED = -32000
NOT_AUTHENTICATED = -32001
FORBIDDEN = -32003
NOT_DRIVING = -32004


class RpcError(Exception):
    """An error answer: code, message, optional data."""

    def __init__(self, code: int, message: str, data: Any = None, ident: Any = None,
                 estop: bool = False, notification: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.ident = ident  # the request's id when it could be read, for the answer
        self.estop = estop  # the refused message asked for an E-stop: run it all the same
        self.notification = notification  # a request without an id: never answered

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True)
class Request:
    method: str
    params: dict[str, Any]
    id: str | int | float | None  # with has_id False: a notification (never answered)
    has_id: bool


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large to be finite")
    return value


MAX_INT = 2**63 - 1  # the widest integer SQLite and the pen's C side hold; far past any limit


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"the integer {text[:20]}... ({len(text)} digits) is beyond "
                         "+-(2**63 - 1); send a number within the parameter's range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows; send a finite number")


def _size_error(size: int) -> RpcError:
    return RpcError(INVALID_REQUEST, f"message of {size} bytes is over the cap of "
                                     f"{MAX_MESSAGE_BYTES} bytes; send less (a profile fits "
                                     "easily)", {"max_message_bytes": MAX_MESSAGE_BYTES})


def check_size(raw: str | bytes) -> None:
    """RpcError (-32600) for a message over the cap; nothing of it is read."""
    size = _oversize(raw)
    if size is not None:
        raise _size_error(size)


def _oversize(raw: str | bytes) -> int | None:
    """The message's size in UTF-8 bytes if it is over the cap, else None. A text frame arrives
    as `str`: its characters are 1-4 bytes each, so only a long one needs encoding to tell."""
    if isinstance(raw, bytes) or len(raw) <= MAX_MESSAGE_BYTES // 4:
        size = len(raw)
    else:  # surrogatepass: a `str` handed in directly may hold a lone surrogate
        size = len(raw.encode("utf-8", "surrogatepass"))
    return size if size > MAX_MESSAGE_BYTES else None


BATCH_REFUSED = "batches are not accepted; send one request object per message"


def parse(raw: str | bytes, *, scan: bool = True) -> Request:
    """One message -> a Request, or RpcError (never anything else).

    A message over the cap is refused unread (an E-stop, ~60 bytes, always fits). Within it,
    with `scan` (an authenticated connection), an E-stop is told first (`estop_scan`: a
    top-level or batch-element `"method": "pen.estop"`), before the strict read and any check
    of the request's shape: with any id, params, members, numbers, nesting or `jsonrpc` it is an
    E-stop. Without `scan` (before rpc.hello, when an E-stop is refused anyway) the message is
    only read strictly: the scan's cost is not spent on a connection that may not E-stop. A
    batch holding an E-stop is refused with `estop=True`: the connection runs it (when
    authenticated) and says whether it did."""
    check_size(raw)
    estop = scan_estop(raw) if scan else None
    if estop is not None:
        return estop
    message = _decode(raw)
    if isinstance(message, list):  # one holding an E-stop: only when not scanned (above)
        raise RpcError(INVALID_REQUEST, BATCH_REFUSED, estop=any(map(_is_estop, message)))
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object with jsonrpc, "
                                        "method, params and id")
    ident = message.get("id")
    has_id = "id" in message
    if _is_estop(message):  # unscanned, or a backstop: no shape check may refuse an E-stop
        return _estop(message)
    if has_id and not _valid_id(ident):
        raise RpcError(INVALID_REQUEST, f"id must be a string of at most {MAX_ID_CHARS} "
                                        "characters, a number within +-(2**63 - 1) or null")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"', ident=_echo(ident))
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "method must be a non-empty string",
                       ident=_echo(ident))
    extra = set(message) - {"jsonrpc", "method", "params", "id"}
    if extra:
        raise RpcError(INVALID_REQUEST, f"unknown member {sorted(extra)[0][:40]!r}; a request "
                                        "has only jsonrpc, method, params and id",
                       ident=_echo(ident))
    params = message.get("params", {})
    if params == []:  # "no arguments", as positional-params libraries send it
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object of named parameters",
                       ident=_echo(ident), notification=not has_id)
    return Request(method, params, ident if _valid_id(ident) else None, has_id)


def scan_estop(raw: str | bytes) -> Request | None:
    """The E-stop a message (within the cap) names, by the lenient scan alone, or None; a
    batch holding one is RpcError(estop=True). Nothing else of the message is read: also for a
    message refused unread for its connection's byte rate."""
    found = find_estop(raw) if _may_name_estop(raw) else None
    if found is None:
        return None
    if found.batch:
        raise RpcError(INVALID_REQUEST, BATCH_REFUSED, estop=True)
    return Request(ESTOP, {}, _echo(found.ident), found.has_id)


_HEAD_ID = re.compile(r'"id"\s*:\s*(-?\d{1,15}|"[^"\\]{0,64}")')
HEAD_ID_CHARS = 256  # where clients put the id (before a long `params`): this much is looked at


def head_id(raw: str | bytes) -> str | int | float | None:
    """The id of a message not read (refused for its size or rate), told by a bounded look
    at its head, where every client of this service puts it; None when not there. So its
    caller hears the refusal rather than waiting for an answer to its id (review 14b)."""
    head = raw[:HEAD_ID_CHARS]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    found = _HEAD_ID.search(text)
    return _echo(json.loads(found.group(1))) if found else None


def id_of(raw: str | bytes) -> tuple[bool, str | int | float | None]:
    """After a check broke unexpectedly: whether the message reads as a request with an id (to
    answer, with that id when it can be echoed) or as a notification (never answered). One
    that cannot be read at all is answered with "id": null, as JSON-RPC 2.0 says."""
    try:
        message = _decode(raw)
    except Exception:  # unreadable, whatever the reason
        return True, None
    if not isinstance(message, dict):
        return True, None
    return "id" in message, _echo(message.get("id"))


def _decode(raw: str | bytes) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_float=_finite_float, parse_int=_bounded_int,
                          parse_constant=_no_constant)
    except RecursionError:
        raise RpcError(PARSE_ERROR, "the message nests too deeply; send a flat JSON-RPC "
                                    "request object") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"the message is not valid JSON ({str(exc)[:120]}); send "
                                    "one JSON-RPC 2.0 request object per message") from None


def _may_name_estop(raw: str | bytes) -> bool:
    """Cheap, before the E-stop scan: "pen.estop" can be in a message only spelled out or with
    a \\u escape (a profile with neither is not scanned)."""
    if isinstance(raw, bytes):
        return b"estop" in raw or b"\\u" in raw
    return "estop" in raw or "\\u" in raw


def _is_estop(message: Any) -> bool:
    return isinstance(message, dict) and message.get("method") == ESTOP


def _estop(message: dict[str, Any]) -> Request:
    """An E-stop, whatever else the message holds; its id echoed when it is one every method
    accepts (else "id": null, as for any id that cannot be echoed)."""
    return Request(ESTOP, {}, _echo(message.get("id")), "id" in message)


def _valid_id(ident: Any) -> bool:
    """JSON-RPC 2.0: a string, a number within +-MAX_INT or null. A number written as a float
    (1e19, 2.5) is held to the same range as an integer (a NaN compares false: refused)."""
    if ident is None:
        return True
    if isinstance(ident, bool):
        return False
    if isinstance(ident, int | float):  # exact int/float comparison; an E-stop's may be wider
        return -MAX_INT <= ident <= MAX_INT
    return isinstance(ident, str) and len(ident) <= MAX_ID_CHARS


def _echo(ident: Any) -> str | int | float | None:
    return ident if _valid_id(ident) else None


def check_params(request: Request) -> None:
    """Unknown method -> -32601; params breaking the method's schema -> -32602."""
    spec = METHODS.get(request.method)
    if spec is None:
        shown = request.method[:60]
        raise RpcError(METHOD_NOT_FOUND, f"no method {shown!r}; rpc.describe lists them")
    try:
        validate(spec.params, request.params)
    except SchemaViolation as exc:
        raise RpcError(INVALID_PARAMS, f"{request.method}: {exc}",
                       {"param": exc.where, "rule": exc.rule}) from None


def response(ident: Any, result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": ident, "result": result},
                      separators=(",", ":"), allow_nan=False, default=str)


def error_response(ident: Any, error: RpcError) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": ident, "error": error.to_dict()},
                      separators=(",", ":"), allow_nan=False, default=str)


def notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params},
                      separators=(",", ":"), allow_nan=False, default=str)


class TokenBucket:
    """`rate` per second (requests, or bytes) with bursts of `burst`; E-stop never asks it."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()
        self.refused = 0

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self, amount: float = 1.0) -> bool:
        """Take `amount` if the bucket holds it (else nothing is taken)."""
        self._refill()
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        self.refused += 1
        return False

    def full(self) -> bool:
        """Refilled to its burst: the client has been quiet long enough."""
        self._refill()
        return self.tokens >= self.burst
