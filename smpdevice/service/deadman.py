"""Dead-man end to end: the pen's lease lives only as long as the driving client's own lease.

    client --heartbeats--> DriverLease --gate--> GatedPenController.lease_needed --> pen lease

- One client at a time drives (`claim`); watching clients never hold the pen.
- The controller's engine asks `lease_needed()` before every renewal of the pen's lease. The
  gate answers from the driver's expiry time on the monotonic clock, in the engine's own
  thread: nothing on the service's event loop has to run for the renewal to stop. A client
  that crashes, hangs or disconnects therefore stops the needle within its client lease plus
  the pen's lease, even if the service's loop is stuck.
- `Watchdog` (a thread of its own, not the event loop) notices the expiry and stops the needle
  and disarms at once, so in the usual case the needle stops well before the pen's lease.
- A request of the driver may still be in flight then (an ARM the pen has not answered: the
  pen looks idle). Every request that moves the pen runs in the one call worker, checked there
  again (`as_driver`), and a loss queues a second look (`settle`) behind them in that worker:
  whatever they left armed or running is stopped and disarmed once they end.
- `pen.stop` wins over every `pen.start` received before it (`StopsWin`), whatever the
  controller's state reads when the stop comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from smpdevice.control.controller import PenController
from smpdevice.control.states import State, StateError
from smpdevice.errors import SmpError

log = structlog.get_logger("smpdevice.service")
T = TypeVar("T")


class NotDriving(SmpError):
    """The caller is not the driving client (or another client drives)."""


@dataclass(frozen=True)
class Driver:
    client: str
    lease_ms: int
    expires_s: float


class DriverLease:
    """Who drives, and until when. Thread-safe; time is `time.monotonic()`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._driver: Driver | None = None
        self.changed = threading.Condition(self._lock)
        # bumped whenever the drive changes hands (a claim after none, after another client
        # or after a lapse; a drop): work begun under one claim sees a loss even if the same
        # client drives again before it looks. Read without the lock.
        self.epoch = 0

    @property
    def driver(self) -> Driver | None:
        return self._driver

    def valid(self) -> bool:
        """The gate: a driver exists and its lease has not run out."""
        d = self._driver
        return d is not None and self._clock() < d.expires_s

    def holder(self) -> str | None:
        d = self._driver
        return d.client if d is not None else None

    def claim(self, client: str, lease_ms: int) -> None:
        with self._lock:
            d = self._driver
            if d is not None and d.client != client and self._clock() < d.expires_s:
                raise NotDriving(f"the pen is driven by {d.client}; it must call pen.release "
                                 f"(or stop sending heartbeats for {d.lease_ms} ms) first")
            if d is None or d.client != client or self._clock() >= d.expires_s:
                self.epoch += 1
            self._driver = Driver(client, lease_ms, self._clock() + lease_ms / 1000)
            self.changed.notify_all()

    def renew(self, client: str) -> Driver:
        with self._lock:
            d = self._require(client)
            self._driver = d = Driver(client, d.lease_ms, self._clock() + d.lease_ms / 1000)
            return d

    def require(self, client: str) -> None:
        with self._lock:
            self._require(client)

    def _require(self, client: str) -> Driver:
        d = self._driver
        if d is None or d.client != client:
            who = f"{d.client} drives it" if d is not None else "nobody drives it"
            raise NotDriving(f"this connection is not the driving client ({who}); call "
                             "pen.drive {\"lease_ms\": 1000} first and keep sending "
                             "pen.heartbeat")
        if self._clock() >= d.expires_s:
            raise NotDriving(f"this connection's driver lease ran out ({d.lease_ms} ms without "
                             "a heartbeat); the needle was stopped. Call pen.drive again")
        return d

    def drop(self, client: str | None = None) -> Driver | None:
        """Forget the driver (`client`'s only, if given); returns who it was."""
        with self._lock:
            d = self._driver
            if d is None or (client is not None and d.client != client):
                return None
            self._driver = None
            self.epoch += 1
            self.changed.notify_all()
            return d

    def expired(self) -> Driver | None:
        d = self._driver
        return d if d is not None and self._clock() >= d.expires_s else None


class GatedPenController(PenController):
    """A `PenController` whose lease renewal also needs the gate (the driver's lease)."""

    lease_gate: Callable[[], bool] = staticmethod(lambda: True)

    def lease_needed(self) -> bool:
        return super().lease_needed() and self.lease_gate()

    @property
    def serial(self) -> str:
        """The connected pen's serial (the service connects before it serves anyone)."""
        if self.identity is None:
            raise SmpError("the service has no pen connected; restart `smp serve`")
        return self.identity.serial


def stop_and_disarm(pen: PenController, why: str) -> None:
    """Bring a moving pen to rest (any thread). Errors are logged: the pen's own lease stops
    it anyway, since the gate is closed."""
    from smpdevice.replay.recorder import note_pen_stop

    note_pen_stop(pen, why)  # an input of the session being recorded, replayed (issue 15.3)
    state = pen.state
    try:
        if state in (State.RUNNING, State.ARMED):
            pen.stop_needle()
            if pen.state is State.ARMED:
                pen.disarm()
        elif state is State.CALIBRATING:
            pen.end_calibration(None)
    except SmpError as exc:
        log.warning("stop after driver loss failed; the pen's lease stops it", error=str(exc),
                    why=why)


def as_driver(lease: DriverLease, client: str, fn: Callable[..., T], *args: Any,
              **kwargs: Any) -> T:
    """`fn(*args)` if `client` still drives now (in the call worker, at the call's turn): a
    request checked as the driver's at dispatch moves nothing once its driver is lost."""
    lease.require(client)
    return fn(*args, **kwargs)


def settle(pen: PenController, why: str, session_busy: Callable[[], bool]) -> None:
    """The second look after a driver loss, run in the call worker behind every request that
    passed `as_driver` before the loss: stop and disarm what such a request left moving (an
    ARM unanswered at the first look, which saw the pen idle). A running session is the one
    actor on the pen: it stops and disarms itself once its driver is gone."""
    if not session_busy() and pen.state in (State.RUNNING, State.ARMED, State.CALIBRATING):
        stop_and_disarm(pen, why)


class StopsWin:
    """`pen.stop` (any operator) wins over every `pen.start` the service received before it,
    whatever the controller's state reads when the stop comes: idle (the driver's arm still
    queued), armed (the start queued in the call worker, waiting for the depth, or on the wire:
    the needle runs at the pen, its ack not yet read). Such a start is refused at its turn, or,
    if it got through, stopped again at once; the stop is answered once they have ended.

    `asked` counts the stops (event loop only; the call worker reads it). A start reads it when
    the service receives it and again before and after its controller call in the worker; a
    stop counts first, then looks at the state. So either the start sees the count change, or
    the stop sees the pen running (the start's ack fired "start" before its call returned).
    """

    def __init__(self) -> None:
        self.asked = 0
        self._starts: set[asyncio.Future[Any]] = set()  # pen.starts not yet ended

    async def start(self, run: Callable[[int], Awaitable[T]]) -> T:
        """A pen.start: `run(asked)` queues `start_needle` with the count read now, on receipt."""
        task = asyncio.ensure_future(run(self.asked))
        self._starts.add(task)
        task.add_done_callback(self._starts.discard)
        return await task

    def start_needle(self, pen: PenController, asked_before: int) -> None:
        """In the call worker, at the start's turn."""
        if self.asked != asked_before:
            raise StateError("the needle was not started: pen.stop came after this pen.start "
                             "and before its turn, and a stop wins over every start on its "
                             "way. Send pen.start again to start.")
        pen.start_needle()
        if self.asked != asked_before:  # the stop came while it was on the wire
            if pen.state in (State.RUNNING, State.ARMED):
                with contextlib.suppress(StateError):  # at rest already (fault, disarm)
                    pen.stop_needle()
            raise StateError("the needle was stopped again at once: pen.stop came while this "
                             "pen.start was on its way, and a stop wins over every start on "
                             "its way. Send pen.start again to start.")

    async def stop(self, stop_needle: Callable[[], Awaitable[None]], state: Callable[[], State],
                   wait_s: float, stop_spin: Callable[[], None] | None = None) -> None:
        """A pen.stop: count it, stop the needle now if it may run (armed: a start may be on
        the wire; calibrating: a speed check's spin, ended by `stop_spin`, which never
        waits), then wait (up to `wait_s`) for the starts and spins received before it to end;
        one still queued then is refused at its turn."""
        self.asked += 1  # first: see the class's note
        ahead = set(self._starts)
        if stop_spin is not None:  # always: a spin asked for before this stop may be queued
            stop_spin()
        if state() in (State.RUNNING, State.ARMED):
            with contextlib.suppress(StateError):  # at rest meanwhile (fault, disarm)
                await stop_needle()
        if ahead:
            await asyncio.wait(ahead, timeout=wait_s)


class Watchdog:
    """A thread that stops the pen as soon as the driver's lease runs out."""

    PERIOD_S = 0.02

    def __init__(self, lease: DriverLease, pen: PenController,
                 on_lost: Callable[[Driver, str], None]) -> None:
        self.lease = lease
        self.pen = pen
        self.on_lost = on_lost  # (driver, reason): after the stop; tells the clients
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smp-service-deadman",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=5)

    def driver_gone(self, client: str, reason: str) -> bool:
        """A driving client disconnected or released: stop now (any thread). Whether it
        drove."""
        d = self.lease.drop(client)
        if d is not None:
            self.lost(d, reason)
        return d is not None

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD_S):
            d = self.lease.expired()
            if d is not None and self.lease.drop(d.client) is not None:
                self.lost(d, f"no heartbeat from {d.client} for {d.lease_ms} ms")

    def lost(self, d: Driver, reason: str) -> None:
        """`d` is no longer in the lease (its caller dropped it): stop the needle, disarm, then
        tell the clients (any thread)."""
        log.warning("driver lost; stopping the needle", client=d.client, reason=reason)
        stop_and_disarm(self.pen, reason)
        with contextlib.suppress(Exception):
            self.on_lost(d, reason)
