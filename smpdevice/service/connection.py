"""One client connection: authentication, checks, dispatch, and an outbox.

Order of checks for every message: before rpc.hello, a message over BEFORE_HELLO_MAX_BYTES is
refused unread (a failed hello); then the connection's character budget (a message over 1 KiB
and over it is read no further than its size and its E-stop: refused unread otherwise), then
size (over the cap: refused unread), then E-stop (for an authenticated connection told by a
lenient scan before the strict JSON read and the request's shape, `estop_scan`; before
rpc.hello, when it is refused anyway, only by the strict read), which
runs at once on this event loop (the controller latches and writes ESTOP, then waits for the
pen's ack) before the next message is read; then JSON and the request's shape (`rpc.parse`),
then authentication, the rate limit, the params' schema, the caller's role, and for methods
that drive the pen whether the caller is the driving client. Requests then run as tasks (a few in
flight per connection), so one slow call never holds up this connection's heartbeats or anyone's
E-stop. The stops (`pen.stop`, `session.stop`, `pen.release`) skip the rate limit and the cap on
requests in flight, as the E-stop does; a stop (or an rpc.hello) once received runs to its end
even if its connection closes meanwhile (a closed connection's pen.stop and session.stop stop
waiting once counted and queued: their runs are shared, see `service.lasting`). A
notification (no id) is never answered, also when refused. Answers and notifications leave
through a bounded outbox: telemetry is dropped when the client lags, and a client that stops
reading altogether is disconnected (which, for a driver, stops the needle). A client closed
for flooding has nothing more read: reading what it still sends until its close (up to
CLOSE_TIMEOUT_S) cost as much as the flood.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from websockets.exceptions import ConnectionClosed

from smpdevice.errors import SmpError
from smpdevice.service.auth import Role
from smpdevice.service.budget import (
    BEFORE_HELLO_MAX_BYTES,
    MESSAGE_CHARS_BURST,
    MESSAGE_CHARS_PER_S,
    SMALL_MESSAGE_CHARS,
    budget,
    flush,
    read_over_rate,
    strike,
    wire_bytes_over,
)
from smpdevice.service.deadman import NotDriving
from smpdevice.service.limits import MAX_ANSWER_BYTES
from smpdevice.service.pen_service import PenService, call_handler, refusal
from smpdevice.service.rpc import (
    BUSY,
    ESTOP,
    FORBIDDEN,
    NOT_AUTHENTICATED,
    RATE_LIMITED,
    REFUSED,
    Request,
    RpcError,
    TokenBucket,
    check_params,
    check_size,
    error_response,
    id_of,
    parse,
    response,
)
from smpdevice.service.schema import METHODS

log = structlog.get_logger("smpdevice.service")

OUTBOX = 512
MAX_INFLIGHT = 8
RATE_PER_S = 500.0
BURST = 1000.0
FLOOD_CLOSE_AFTER = 5000  # refused messages in a row: the client is disconnected
HELLO_TIMEOUT_S = 5.0  # a silent connection holds a descriptor (door.py): not for long
MAX_FAILED_HELLOS = 3
INLINE = frozenset({"rpc.ping", "pen.heartbeat", "rpc.hello", "telemetry.subscribe",
                    "telemetry.unsubscribe"})
# Requests that bring the pen to rest. Like pen.estop, they skip the rate limit and the cap on
# requests in flight (a stop refused "busy" while the needle runs is a stop lost); they have a
# cap of their own, MAX_INFLIGHT stops in flight per connection.
STOPS = frozenset({"pen.stop", "session.stop", "pen.release"})
# Never taken back once received: a connection that closes cancels its other requests, not
# these (a stop sent just before closing a console tab still stops; a hello that dropped this
# client's drive still stops and disarms the pen). They wait in `service.lasting`, which stays
# bounded (see PenService.__init__): the stops share their runs and end with `Client.gone`.
LASTING = STOPS | {"rpc.hello"}


class Client:
    """What the service knows about one connection."""

    def __init__(self, service: PenService, ws: Any, transport: str) -> None:
        self.id = service.new_client_id(transport)
        self.ws = ws
        self.role: Role | None = None
        self.name = ""
        self.telemetry_hz = 0
        self.telemetry_sent_s = 0.0
        self.failed_hellos = 0
        self.refused_in_row = 0
        self.strikes = 0  # refused for a rate since the buckets were last full
        self.flooding = ""  # why it is closed for flooding: nothing more of it is read
        self.dropped = 0
        self.inflight = 0
        self.stops_inflight = 0
        self.closing = False
        self.closer: asyncio.Future | None = None
        # done once the connection has closed: a stop counted and queued stops waiting then
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.bucket = TokenBucket(RATE_PER_S, BURST)
        self.chars = TokenBucket(MESSAGE_CHARS_PER_S, MESSAGE_CHARS_BURST)
        self.outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX)

    def notify(self, text: str, droppable: bool = False) -> None:
        """Queue a message (event loop thread). Never blocks."""
        if self.closing:
            return
        if droppable and self.outbox.qsize() > OUTBOX // 4:
            self.dropped += 1
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.close(1008, "client does not read its messages")

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            log.warning("closing client", client=self.id, reason=reason)
            self.closer = asyncio.ensure_future(self.ws.close(code, reason))

    async def write_loop(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.ws.send(text)


async def serve_client(service: PenService, ws: Any, transport: str) -> None:
    """The whole life of one connection."""
    client = Client(service, ws, transport)
    ws.service_client = client  # the door (door.py) tells an authenticated connection by it
    service.clients[client.id] = client
    writer = asyncio.ensure_future(client.write_loop())
    tasks: set[asyncio.Task] = set()

    def hello_timeout() -> None:
        if client.role is None:
            client.close(1008, f"no rpc.hello within {HELLO_TIMEOUT_S:.0f} s")

    timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT_S, hello_timeout)
    try:
        async for raw in ws:
            _handle(service, client, raw, tasks)
            if client.flooding:  # read nothing more: what it sends until its close is waste
                await flush(client)
                client.close(1008, client.flooding)
                break
            await asyncio.sleep(0)  # let other connections (an E-stop) in between messages
    except ConnectionClosed:
        pass
    finally:
        timer.cancel()
        client.gone.set_result(None)
        service.client_gone(client)  # a driver that leaves stops the needle
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            writer.cancel()
            await writer
        log.info("client gone", client=client.id)


def _reply_error(client: Client, ident: Any, error: RpcError) -> None:
    client.notify(error_response(ident, error))


def _handle(service: PenService, client: Client, raw: str | bytes,
            tasks: set[asyncio.Task]) -> None:
    """Check one message and run it; a check that broke refuses this message only (nothing
    ran, the connection lives on), answered as any refusal: never for a notification."""
    try:
        _check_message(service, client, raw, tasks)
    except Exception:
        log.exception("message refused: a check failed unexpectedly", client=client.id)
        has_id, ident = id_of(raw)
        with contextlib.suppress(Exception):  # the refusal itself broke: logged above
            _refused(client, ident, RpcError(-32603, "internal error while checking the "
                                                     "message: nothing ran; see the service "
                                                     "log"), answer=has_id)


def _check_message(service: PenService, client: Client, raw: str | bytes,
                   tasks: set[asyncio.Task]) -> None:
    chars = budget(service, client)
    if client.strikes and client.bucket.full() and chars.full():
        client.strikes = 0  # it paused: what it was refused was a burst, not a flood
    size = len(raw)  # characters of a text frame (what reading it costs), bytes of a binary
    over_rate = False
    try:
        if client.role is None and wire_bytes_over(raw, BEFORE_HELLO_MAX_BYTES):
            client.failed_hellos += 1  # only a hello is read before it: three close
            check_size(raw)  # over the cap: that error, as for anyone
            raise RpcError(NOT_AUTHENTICATED, "not authenticated: send rpc.hello first; a "
                                              f"message over {BEFORE_HELLO_MAX_BYTES} "
                                              "bytes is not read before it")
        over_rate = size > SMALL_MESSAGE_CHARS and not chars.take(size)
        if over_rate:  # its size and its E-stop only (an E-stop is exempt from the rate)
            request = read_over_rate(client, raw)
        else:  # the E-stop scan only for a connection that may E-stop (rpc.parse)
            request = parse(raw, scan=client.role is not None)
    except RpcError as exc:
        if exc.estop:  # a batch holding an E-stop: run that first, and say whether it ran
            exc.message += (_estop(service, client, None) or
                            "; its pen.estop was NOT run: this connection has not sent "
                            "rpc.hello (send it first: any authenticated client may E-stop)")
        # Unreadable or no request object: answered ("id": null), as JSON-RPC 2.0 says; a
        # well-formed notification never is.
        _refused(client, exc.ident, exc, answer=not exc.notification)
        if over_rate:
            strike(client)
        return
    _check_and_spawn(service, client, request, tasks)
    if over_rate:  # after its E-stop ran
        strike(client)


def _estop(service: PenService, client: Client, request: Request | None) -> str:
    """Run an E-stop at once; answer it (after the pen's ack) unless it is a notification or
    part of a batch (request None). Returns what happened, for a batch's refusal ("" when the
    connection is not authenticated and nothing ran)."""
    answer = request is not None and request.has_id
    ident = request.id if request is not None else None
    if client.role is None:
        if request is not None:
            _refused(client, ident, RpcError(NOT_AUTHENTICATED, "send rpc.hello first; any "
                                                                "authenticated client may "
                                                                "E-stop"), answer=answer)
        return ""
    try:  # latched and sent before anything else runs; the answer after the pen's ack
        result = service.estop_inline(client)
    except SmpError as exc:  # latched anyway: the controller holds the lease first
        if answer:
            _reply_error(client, ident, refusal(exc))
        return f"; its pen.estop was run all the same ({str(exc)[:200]})"
    except Exception:
        log.exception("E-stop failed", client=client.id)
        failed = ("internal error in pen.estop: it may not have reached the pen; use the "
                  "pen's own stop and see the service log")
        if answer:
            _reply_error(client, ident, RpcError(-32603, failed))
        return "; its pen.estop was tried: " + failed
    if answer:
        client.notify(response(ident, result))
    return "; its pen.estop was run all the same"


def _check_and_spawn(service: PenService, client: Client, request: Request,
                     tasks: set[asyncio.Task]) -> None:
    ident, answer = request.id, request.has_id
    if request.method == ESTOP:  # first of all: nothing may delay it
        _estop(service, client, request)
        return
    if client.role is None and request.method != "rpc.hello":
        _refused(client, ident, RpcError(NOT_AUTHENTICATED, "not authenticated: send "
                                                            "rpc.hello with a token first"),
                 answer=answer)
        return
    stop = request.method in STOPS
    if service.closing and not stop:  # the pen was brought to rest for the close: it stays so
        _refused(client, ident, RpcError(REFUSED, f"{request.method}: the service is stopping; "
                                                  "only stops are taken now"), answer=answer)
        return
    if not stop and not client.bucket.take():
        _refused(client, ident, RpcError(RATE_LIMITED, f"rate limited: over {RATE_PER_S:.0f} "
                                                       "requests/s on this connection; slow "
                                                       "down"), answer=answer)
        strike(client)
        return
    try:
        check_params(request)
        spec = METHODS[request.method]
        role = client.role or Role.VIEWER
        if spec.role > role:
            raise RpcError(FORBIDDEN, f"{request.method} needs the {spec.role.label} role; "
                                      f"this connection is {role.label}")
        if spec.drives:
            service.lease.require(client.id)
        if stop and client.stops_inflight >= MAX_INFLIGHT:
            raise RpcError(BUSY, f"{MAX_INFLIGHT} stops are already in flight on this "
                                 "connection; they bring the pen to rest")
        if not stop and client.inflight >= MAX_INFLIGHT and request.method not in INLINE:
            raise RpcError(BUSY, f"{MAX_INFLIGHT} requests are already in flight on this "
                                 "connection; wait for their answers")
    except RpcError as exc:
        _refused(client, ident, exc, answer=answer)
        return
    except NotDriving as exc:
        _refused(client, ident, refusal(exc), answer=answer)
        return
    client.refused_in_row = 0
    _spawn(client, tasks, service.lasting, request,
           call_handler(service, request.method, client, request.params))


def _refused(client: Client, ident: Any, error: RpcError, *, answer: bool = True) -> None:
    """Count a refusal (floods and failed hellos close the connection) and answer it, unless
    it refuses a notification: JSON-RPC 2.0 never answers one, not even with an error."""
    client.refused_in_row += 1
    if answer:
        _reply_error(client, ident, error)
    if client.refused_in_row >= FLOOD_CLOSE_AFTER:
        client.flooding = f"{FLOOD_CLOSE_AFTER} refused messages in a row"
    elif client.failed_hellos >= MAX_FAILED_HELLOS:
        client.close(1008, "too many failed rpc.hello")


def _answer(request: Request, result: Any) -> str:
    """The answer's text, or one clear error when it is over what a client accepts (a client
    that got it would close its connection: for a driver, the dead-man stops the pen)."""
    text = response(request.id, result)
    if len(text) <= MAX_ANSWER_BYTES:  # ASCII (json.dumps escapes the rest): chars == bytes
        return text
    log.warning("answer over the cap refused", method=request.method, bytes=len(text))
    return error_response(request.id, RpcError(
        REFUSED, f"{request.method}: the answer would be {len(text)} bytes, over the "
                 f"{MAX_ANSWER_BYTES} bytes a client accepts (max_answer_bytes); ask for less "
                 "(for the pass log: `smp sessions export` on this station)",
        {"max_answer_bytes": MAX_ANSWER_BYTES, "answer_bytes": len(text)}))


def _spawn(client: Client, tasks: set[asyncio.Task], lasting: set[asyncio.Task],
           request: Request, work: Any) -> None:
    stop = request.method in STOPS

    async def run() -> None:
        if stop:
            client.stops_inflight += 1
        else:
            client.inflight += 1
        try:
            result = await work
        except RpcError as exc:  # counted also for a notification: failed hellos close
            _refused(client, request.id, exc, answer=request.has_id)
            return
        except SmpError as exc:
            if request.has_id:
                client.notify(error_response(request.id, refusal(_reaching(client, exc))))
            return
        except Exception:
            log.exception("method failed", method=request.method, client=client.id)
            if request.has_id:
                client.notify(error_response(request.id, RpcError(
                    -32603, f"internal error in {request.method}; see the service log")))
            return
        finally:
            if stop:
                client.stops_inflight -= 1
            else:
                client.inflight -= 1
        if request.has_id:
            client.notify(_answer(request, result))

    task = asyncio.ensure_future(run())
    held = lasting if request.method in LASTING else tasks  # only `tasks` die with the client
    held.add(task)
    task.add_done_callback(held.discard)


def _reaching(client: Client, exc: SmpError) -> SmpError:
    """A refusal by a latched fault or E-stop names the clear that reaches this pen through
    this service (`smp clear --service URL`, the URL the client connected to), never the
    service's own pen port, which reaches another pen or none (review 15 S4), whatever the
    method that was refused."""
    from smpdevice.control.states import StateError
    from smpdevice.service.work import reached_at

    if isinstance(exc, StateError) and exc.latched is not None:
        return exc.reached_by("--service", reached_at(client) or "URL")
    return exc
