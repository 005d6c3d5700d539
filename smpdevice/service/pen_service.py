"""The pen service: one owner of one pen, many clients; every method of `schema.METHODS`.

Each handler is `async (client, params) -> result`, registered with `@method(name)`; the
connection layer (`service.connection`) has already checked the caller's role and the params'
schema. Handlers that drive the pen (`drives=True`) also need the caller to be the driving
client (`deadman.DriverLease`). Blocking controller calls go through `AsyncPenController`:
one call worker in order, stops on their own lane, E-stop in a fresh thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import structlog

from smpdevice.calibration.report import telemetry_rate_hz
from smpdevice.control.aio import AsyncPenController, SharedRuns, run_in_new_thread
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import SAFE, EStopUnconfirmed, State
from smpdevice.errors import SmpError
from smpdevice.service.auth import Role, role_for
from smpdevice.service.calibration_run import CalibrationRun
from smpdevice.service.deadman import (
    DriverLease,
    GatedPenController,
    StopsWin,
    Watchdog,
    as_driver,
    on_own_thread,
    settle,
    stop_and_disarm,
    until_gone,
)
from smpdevice.service.rpc import NOT_AUTHENTICATED, RpcError, notification
from smpdevice.service.schema import (
    API_VERSION,
    LEASE_RANGE_MS,
    METHODS,
    TELEMETRY_RATE_HZ,
    describe,
)
from smpdevice.service.work import SessionWork

log = structlog.get_logger("smpdevice.service")
Handler = Callable[["PenService", Any, dict[str, Any]], Awaitable[Any]]
T = TypeVar("T")
VIEWER_READERS = 2  # threads for the viewers' reads; more calls queue behind them
PROFILE_CHECKERS = 2  # threads for session.check (parsing only, no log): never the above
SETTLE_WAIT_S = 10.0  # how long a hello, a release or a pen.stop waits for requests in flight
HANDLERS: dict[str, Handler] = {}
DRIVER_ROLE = METHODS["pen.drive"].role  # a connection below it cannot hold the pen


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


def telemetry_dict(t: PenTelemetry) -> dict[str, Any]:
    d = asdict(t)
    d["state"] = t.state.name
    d["faults"] = t.faults.names
    return d


def zone_window(zone: Any) -> dict[str, float] | None:
    """The zone's window as `pen.state` answers it (depth and speed bounds), None for none."""
    return None if zone is None else {
        "depth_min_mm": zone.epidermal_floor_mm, "depth_max_mm": zone.dermal_ceiling_mm,
        "speed_min_hz": zone.speed_min_hz, "speed_max_hz": zone.speed_max_hz}


class PenService:
    """Owns `pen` (a connected GatedPenController); clients are added by the server."""

    def __init__(self, pen: GatedPenController, *, tokens: dict[Role, str],
                 passlog_path: Path | None = None,
                 lease_clock: Callable[[], float] = time.monotonic) -> None:
        self.pen = pen
        self.apen = AsyncPenController(pen)
        self.tokens = tokens
        self.passlog_path = passlog_path
        self.lease = DriverLease(lease_clock)  # the clients' leases: tests may hold the clock
        pen.lease_gate = self.lease.valid  # the pen's lease lives only as long as the driver's
        self.watchdog = Watchdog(self.lease, pen, self._driver_lost)
        self.clients: dict[str, Any] = {}
        self.char_budgets: dict[Role, Any] = {}  # per role, shared by its connections
        self.loop: asyncio.AbstractEventLoop | None = None
        self.work = SessionWork(self)
        self.stops = StopsWin()  # pen.stop wins over the pen.starts received before it
        self._pump: asyncio.Task | None = None
        self._ids = iter(range(1, 1 << 62))
        self.calibration_run: CalibrationRun | None = None  # the guided run in progress
        # why the stored calibration was not used at start (runner.build); None: no problem
        self.calibration_problem: str | None = None
        self.serial = pen.identity.serial if pen.identity else None  # reconnect: this pen only
        self._reconnect: asyncio.Task | None = None
        self._settles: set[asyncio.Future] = set()  # second looks after a loss, in flight
        # Stops (and rpc.hello) that outlive their connection. Bounded (review 11 B2): a live
        # connection holds at most MAX_INFLIGHT stops (connection.py); a closed one's pen.stop
        # and session.stop leave as soon as they are counted and queued (their first step:
        # `Client.gone`), their runs shared (one under way and one queued per kind, SharedRuns);
        # a closed one's pen.release and rpc.hello end at once unless it drove the pen (then
        # once, after that loss's stop).
        self.lasting: set[asyncio.Task] = set()
        # set first by the close (server.py): from then on only stops and the E-stop are taken
        self.closing = False
        self._session_stop_lane = ThreadPoolExecutor(max_workers=1,
                                                     thread_name_prefix="smp-session-stop")
        self._session_stops = SharedRuns(self._submit_session_stop)
        # Viewers' record reads (sessions.*) have a bounded pool of their own: held calls (a
        # locked log) never take the loop's default pool. session.check (no log; a driver
        # calls it before session.run) has its own lane: never behind them (review 18e).
        self.viewer_reads = ThreadPoolExecutor(max_workers=VIEWER_READERS,
                                               thread_name_prefix="smp-viewer-reads")
        self.profile_checks = ThreadPoolExecutor(max_workers=PROFILE_CHECKERS,
                                                 thread_name_prefix="smp-profile-checks")

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.pen.add_state_listener(self._on_state)
        self.watchdog.start()
        self._pump = asyncio.ensure_future(self._telemetry_pump())
        from smpdevice.service.reconnect import keep_reconnecting

        self._reconnect = asyncio.ensure_future(keep_reconnecting(self))

    async def close(self) -> None:
        for task in (self._pump, self._reconnect):
            if task is not None:
                task.cancel()
        self.closing = True  # a session stopped now is left open (session_play._finish)
        self.work.request_stop(cause="the service is shutting down")
        self.watchdog.close()
        await asyncio.to_thread(self.work.join, 10.0)
        self._session_stop_lane.shutdown(wait=False)  # a run queued still runs
        # queued reads and checks are dropped: each could wait out a busy log and hold the exit
        self.viewer_reads.shutdown(wait=False, cancel_futures=True)
        self.profile_checks.shutdown(wait=False, cancel_futures=True)
        await self.apen.close()

    def _submit_session_stop(self, fn: Callable[[], Any]) -> Future[Any]:
        try:
            return self._session_stop_lane.submit(fn)
        except RuntimeError:  # closed: the stop still runs, in a thread of its own
            return run_in_new_thread(fn, name="smp-session-stop-closed")

    def new_client_id(self, transport: str) -> str:
        return f"{transport}-{next(self._ids)}"

    # ------------------------------------------------------------------ fan-out

    def broadcast(self, method_name: str, params: dict[str, Any]) -> None:
        """To every authenticated client (event loop thread only). While the service closes,
        the result of a session its close left open is not told: the connection's close
        (1001) says it, as a host crash would (`smp run --service` exits 6, how to resume
        once `smp serve` is back); the pass it stopped is told (server.py, shutdown.py)."""
        if self.closing and method_name == "session.result" and params.get("left_open"):
            return
        text = notification(method_name, params)
        for client in list(self.clients.values()):
            if client.role is not None:
                client.notify(text)

    def broadcast_threadsafe(self, method_name: str, params: dict[str, Any]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            # closed between the look and the call (shutdown): nobody is left to tell, and the
            # caller (a session thread closing its session) must go on
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.broadcast, method_name, params)

    def _on_state(self, old: State, new: State, reason: str) -> None:
        fault = self.pen.last_fault
        self.broadcast_threadsafe("pen.state", {"old": old.value, "new": new.value,
                                                "reason": reason,
                                                "last_fault": str(fault) if fault else None})
        if new in SAFE:
            self.broadcast_threadsafe("pen.fault", {
                "state": new.value, "reason": str(fault or reason),
                "faults": fault.faults.names if fault else []})

    def _driver_lost(self, driver: Any, reason: str) -> None:
        """After the loss's first stop (any thread): the second look behind the requests in
        flight, and every client told."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            # The look is made in the loop, so a loop that stops first leaves no coroutine
            # behind that was never awaited.
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to look behind
                loop.call_soon_threadsafe(self._queue_settle, reason)
        self.broadcast_threadsafe("pen.driver", {"client": None, "reason": reason})

    async def settled(self, reason: str, wait_s: float | None = None) -> None:
        """Queue `settle` behind every request in the call worker; wait for it (up to `wait_s`:
        it still runs later)."""
        task = self._queue_settle(reason)
        if wait_s is not None:
            await asyncio.wait({task}, timeout=wait_s)

    def _queue_settle(self, reason: str) -> asyncio.Future[Any]:
        """In the loop: `settle` queued behind every request in the call worker."""
        task = asyncio.ensure_future(self.apen.call(settle, self.pen, reason, self.work.busy))
        self._settles.add(task)
        task.add_done_callback(self._settle_done)
        return task

    def _settle_done(self, task: asyncio.Future) -> None:
        self._settles.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the pen's lease stops it
            log.warning("stop after driver loss failed", error=repr(task.exception()))

    async def drive(self, client: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A controller call that moves the pen, in the call worker, only if `client` still
        drives at its turn (a driver lost meanwhile moves nothing; see deadman.settle)."""
        return await self.apen.call(as_driver, self.lease, client.id, fn, *args, **kwargs)

    async def _telemetry_pump(self) -> None:
        async for t in self.apen.telemetry(max_queue=64):
            text: str | None = None
            now = time.monotonic()
            for client in list(self.clients.values()):
                rate = client.telemetry_hz
                if not rate or now - client.telemetry_sent_s < 0.9 / rate:
                    continue
                if text is None:
                    text = notification("pen.telemetry", telemetry_dict(t))
                client.telemetry_sent_s = now
                client.notify(text, droppable=True)

    # ------------------------------------------------------------------ E-stop, fast path

    def estop_inline(self, client: Any) -> dict[str, Any]:
        """E-stop on the calling thread (the connection's event loop): no thread to start, no
        queue to pass; the controller latches, stops renewing the lease and writes ESTOP at
        once, then waits for the pen's acknowledgement (bounded by its retries)."""
        try:
            self.pen.estop()
            confirmed = True
        except EStopUnconfirmed:
            confirmed = False  # latched here and the lease withheld; the pen stops by itself
        self.work.request_stop(cause=f"E-stop by {client.id}")
        log.warning("E-stop requested", client=client.id, role=client.role.label,
                    confirmed=confirmed)  # logged after: rendering a line must not delay it
        return {"ok": True, "state": self.pen.state.value, "confirmed": confirmed}

    def client_gone(self, client: Any) -> None:
        """A connection closed: a driver that leaves stops the needle (dead-man)."""
        self.clients.pop(client.id, None)
        if self.lease.holder() == client.id:
            threading.Thread(target=self.watchdog.driver_gone,
                             args=(client.id, f"{client.id} disconnected"),
                             name="smp-service-driver-gone", daemon=True).start()

    # ------------------------------------------------------------------ connection methods

    @method("rpc.hello")
    async def m_hello(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        role = role_for(self.tokens, p["token"])
        if role is None:
            client.failed_hellos += 1
            raise RpcError(NOT_AUTHENTICATED, "unknown token; read it from the token file "
                                              "(service.tokens.json in the data directory)")
        if "role" in p:
            asked = Role.parse(p["role"])
            if asked > role:  # a failed hello as an unknown token is: three close
                client.failed_hellos += 1
                raise RpcError(NOT_AUTHENTICATED, f"this token gives the {role.label} role; "
                                                  f"it cannot ask for {asked.label}")
            role = asked
        client.role = role
        client.name = p.get("client", "")
        log.info("client authenticated", client=client.id, role=role.label, name=client.name)
        dropped = self.lease.drop(client.id) if role < DRIVER_ROLE else None
        if dropped is not None:
            # Re-authenticated below what driving needs: it loses the pen now, and the needle
            # stops as on pen.release. The drop is here, on the loop, not in driver_gone's
            # thread: the gate is closed before this connection's next request is dispatched.
            why = f"{client.id} re-authenticated as {role.label}"
            await on_own_thread(self.watchdog.lost, dropped, why)
            await self.settled(why, SETTLE_WAIT_S)  # its requests in flight end disarmed
        return {"client_id": client.id, "role": role.label, "api_version": API_VERSION,
                "lease_range_ms": list(LEASE_RANGE_MS),
                "telemetry_rate_hz": list(TELEMETRY_RATE_HZ)}

    @method("rpc.describe")
    async def m_describe(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        return describe()

    @method("rpc.ping")
    async def m_ping(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    # ------------------------------------------------------------------ reading

    @method("pen.identity")
    async def m_identity(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        pen = self.pen
        cal = pen.calibration
        return {
            "identity": pen.identity.to_dict() if pen.identity else None,
            "port": pen.port_url, "simulated": pen.simulated,
            "footswitch": pen.footswitch,  # the station's mode: required | optional | off
            "telemetry_hz": telemetry_rate_hz(pen),  # a client's spins are checked against it
            "zones": {name: z.model_dump() for name, z in pen.zones.items()},
            "calibration": None if cal is None else {
                "calibration_id": cal.calibration_id, "expires_at": cal.expires_at.isoformat(),
                "technician": cal.technician},
            # why the pen started uncalibrated, while it still is (a stored one not used)
            "calibration_problem": self.calibration_problem if cal is None else None,
            # why this pen is never run (pedal_gate.py): read, cleared and E-stopped only
            "footswitch_refused": pen.footswitch_refused,
        }

    @method("pen.state")
    async def m_state(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        pen = self.pen
        fault, zone, t = pen.last_fault, pen.zone, pen.telemetry
        return {
            "state": pen.state.value,
            "last_fault": str(fault) if fault and pen.state in SAFE else None,
            "faults": fault.faults.names if fault and pen.state in SAFE else [],
            "zone": pen.zone_name,
            "zone_window": zone_window(zone),
            "setpoints": asdict(pen.setpoints) if pen.setpoints else None,
            "telemetry": telemetry_dict(t) if t else None,
            "driver": self.lease.holder(),
            "you": client.id,
            "session": self.work.status(),
        }

    # ------------------------------------------------------------------ sessions

    async def viewer_read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.viewer_reads, fn, *args)

    @method("session.run")
    async def m_session_run(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        stops = self.work.received()  # a latch or loss at receipt: never opens after a clear
        return await asyncio.to_thread(self.work.start, client.id, p, stops)

    @method("session.stop")
    async def m_session_stop(self, client: Any, p: dict[str, Any]) -> dict[str, Any]:
        self.work.request_stop(asked=True)  # asked: closed as interrupted, not left open
        # Idempotent past the request: one look (and stop) runs, others share the one queued
        # (a flood queues no backlog); a closed connection's stop stops waiting once queued.
        run = self._session_stops.next_run(functools.partial(
            self._stop_session, f"session.stop by {client.id}"))
        await until_gone(asyncio.wrap_future(run), getattr(client, "gone", None))
        return {"ok": True}

    def _stop_session(self, why: str) -> None:
        """In the session-stop lane: a running session stops its own needle; else stop here."""
        if not self.work.stopped_itself():
            stop_and_disarm(self.pen, why)


def call_handler(service: PenService, name: str, client: Any,
                 params: dict[str, Any]) -> Awaitable[Any]:
    return HANDLERS[name](service, client, params)


def refusal(exc: SmpError) -> RpcError:
    """A user-causable error from below -> a JSON-RPC error naming its kind."""
    from smpdevice.service.deadman import NotDriving
    from smpdevice.service.rpc import NOT_DRIVING, REFUSED

    data: dict[str, Any] = {"type": type(exc).__name__}
    reason = getattr(exc, "reason", None)  # a NACK's (CommandRefused): e.g. CONDITION_ACTIVE
    if isinstance(getattr(reason, "name", None), str):
        data["reason"] = reason.name  # type: ignore[union-attr]
    issues = getattr(exc, "issues", None)
    if isinstance(issues, list):
        data["issues"] = [i.as_dict() if hasattr(i, "as_dict") else str(i) for i in issues][:50]
    code = NOT_DRIVING if isinstance(exc, NotDriving) else REFUSED
    return RpcError(code, str(exc)[:2000], data)


# The pen.* and telemetry.* commands, calibration.*, pen.reconnect, session.resume/close and
# sessions.* handlers live in their own modules; importing them registers them.
from smpdevice.service import calibrating as _calibrating  # noqa: E402, F401
from smpdevice.service import pen_methods as _pen_methods  # noqa: E402, F401
from smpdevice.service import reconnect as _reconnect  # noqa: E402, F401
from smpdevice.service import records_rpc as _records_rpc  # noqa: E402, F401
from smpdevice.service import resuming as _resuming  # noqa: E402, F401
