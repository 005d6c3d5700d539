"""Dead-man end to end: the pen's lease lives only as long as the driving client's own lease.

    client --heartbeats--> DriverLease --gate--> GatedPenController.lease_needed --> pen lease

- One client at a time drives (`claim`); watching clients never hold the pen.
- The controller's engine asks `lease_needed()` before every renewal of the pen's lease. The
  gate answers from the driver's expiry time on the monotonic clock, in the engine's own
  thread: nothing on the service's event loop has to run for the renewal to stop. A client
  that crashes, hangs or disconnects therefore stops the needle within its client lease plus
  the pen's lease, even if the service's loop is stuck.
- `Watchdog` (a thread of its own, not the event loop) notices the expiry and stops the needle
  and disarms at once, so in the usual case the needle stops well before the pen's lease. A
  claim landing before its next look drops the lapsed driver itself, and `pen.drive` acts on
  that loss (stop, disarm, clients told) before answering; a claim made while a loss is still
  being acted on is answered once it has been (`DriverLease.wait_acted`).
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
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from smpdevice.control.aio_lanes import run_in_new_thread
from smpdevice.control.controller import PenController
from smpdevice.control.states import State, StateError
from smpdevice.errors import SmpError
from smpdevice.service.pedal_gate import FootswitchGatedPen

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
        self._unacted = 0  # drops whose `Watchdog.lost` has not ended (see `wait_acted`)
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

    def claim(self, client: str, lease_ms: int) -> Driver | None:
        """`client` drives from now on. Returns the driver this claim replaced because its
        lease had run out (another client, or `client` itself after its own lapse): dropped
        here, under the lock, as the watchdog would have, and the caller must act on that loss
        (`Watchdog.lost`: stop, disarm, tell the clients) before it answers, since the watchdog
        polls and the new claim would otherwise close its gate on a needle still running.
        None: nobody lost the pen (there was no driver, or `client` renews its live claim)."""
        with self._lock:
            d = self._driver
            lapsed = None
            if d is not None and self._clock() < d.expires_s:
                if d.client != client:
                    raise NotDriving(f"the pen is driven by {d.client}; it must call "
                                     f"pen.release (or stop sending heartbeats for "
                                     f"{d.lease_ms} ms) first")
            else:  # no driver, or one whose lease ran out: the drive changes hands
                self.epoch += 1
                if d is not None:
                    lapsed = d
                    self._unacted += 1
            self._driver = Driver(client, lease_ms, self._clock() + lease_ms / 1000)
            self.changed.notify_all()
            return lapsed

    def renew(self, client: str) -> Driver:
        with self._lock:
            d = self._require(client)
            self._driver = d = Driver(client, d.lease_ms, self._clock() + d.lease_ms / 1000)
            return d

    def restart(self, client: str) -> None:
        """A claim answered only now (it waited for a lost driver's stop): its lease counts
        from the answer, even if the wait outlasted it. NotDriving if the claim was dropped
        meanwhile (another claim, a release): never an "ok" for a lost drive."""
        with self._lock:
            d = self._driver
            if d is None or d.client != client:
                self._require(client)  # raises, naming who drives
            assert d is not None
            self._driver = Driver(client, d.lease_ms, self._clock() + d.lease_ms / 1000)

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
        """Forget the driver (`client`'s only, if given); returns who it was. A driver returned
        is a loss its caller must act on: `Watchdog.lost` (until then `wait_acted` waits)."""
        with self._lock:
            d = self._driver
            if d is None or (client is not None and d.client != client):
                return None
            return self._drop(d)

    def drop_lapsed(self) -> Driver | None:
        """Forget the driver if its lease has run out (the watchdog's look): one step under
        the lock, so a claim made meanwhile (which drops it itself) is never dropped."""
        with self._lock:
            d = self._driver
            if d is None or self._clock() < d.expires_s:
                return None
            return self._drop(d)

    def _drop(self, d: Driver) -> Driver:
        self._driver = None
        self.epoch += 1
        self._unacted += 1
        self.changed.notify_all()
        return d

    @property
    def unacted(self) -> int:
        """Losses dropped from the lease whose stop and disarm have not ended yet."""
        return self._unacted

    def acted(self) -> None:
        """A dropped driver's loss was acted on (`Watchdog.lost` ended)."""
        with self._lock:
            self._unacted = max(0, self._unacted - 1)
            self.changed.notify_all()

    def wait_acted(self, timeout_s: float) -> bool:
        """Wait until every loss dropped so far has been acted on (any thread but the loop):
        a new driver is answered only once the pen its predecessor lost is at rest."""
        with self._lock:
            return self.changed.wait_for(lambda: self._unacted == 0, timeout_s)


class GatedPenController(FootswitchGatedPen):
    """A `PenController` whose lease renewal also needs the gate (the driver's lease); a pen
    the station's footswitch mode cannot run is served, never run (pedal_gate.py)."""

    lease_gate: Callable[[], bool] = staticmethod(lambda: True)

    def lease_needed(self) -> bool:
        return super().lease_needed() and self.lease_gate()

    @property
    def serial(self) -> str:
        """The connected pen's serial (the service connects before it serves anyone)."""
        if self.identity is None:
            raise SmpError("the service has no pen connected; restart `smp serve`")
        return self.identity.serial


MOVING = (State.RUNNING, State.ARMED, State.CALIBRATING)  # what a loss of the driver ends


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
        if isinstance(exc, StateError) and pen.state not in MOVING:
            log.debug("at rest already: another stop came first", error=str(exc), why=why)
            return  # two losses told at once (a close and a disconnect): the other one won
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
    if not session_busy() and pen.state in MOVING:
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

    async def stop(self, stop_run: Callable[[], Future[None]], state: Callable[[], State],
                   wait_s: float, stop_spin: Callable[[], None] | None = None,
                   gone: asyncio.Future[Any] | None = None) -> None:
        """A pen.stop: count it, stop the needle now if it may run (armed: a start may be on
        the wire; calibrating: a speed check's spin, ended by `stop_spin`, which never
        waits), then wait (up to `wait_s`) for the starts and spins received before it to end;
        one still queued then is refused at its turn.

        `stop_run()` is the stop lane's shared `stop_needle` run that begins after now (stops
        are idempotent: a flood of them queues one, AsyncPenController.stop_needle_run). Once
        counted and queued, a stop has done its part: when its connection is `gone`, nobody is
        left to answer, so it stops waiting (the run goes on): a client that sends its stops
        and leaves, again and again, leaves no task behind (service.lasting stays bounded)."""
        self.asked += 1  # first: see the class's note
        ahead = set(self._starts)
        if stop_spin is not None:  # always: a spin asked for before this stop may be queued
            stop_spin()
        if state() in (State.RUNNING, State.ARMED):
            with contextlib.suppress(StateError):  # at rest meanwhile (fault, disarm)
                await until_gone(asyncio.wrap_future(stop_run()), gone)
        if ahead:
            await until_gone(asyncio.wait(ahead, timeout=wait_s), gone)


async def until_gone(awaitable: Awaitable[T], gone: asyncio.Future[Any] | None) -> None:
    """Await `awaitable` (its error raised) until it ends or `gone` is done; a cancellation
    meanwhile waits for its end too (a stop is never left behind its caller), then is raised.
    Never cancels it: a stop run is shared by every stop that came before it began."""
    task = asyncio.ensure_future(awaitable)
    task.add_done_callback(_retrieved)  # also when nobody waits for it any more
    cancelled = False
    while not task.done() and not (gone is not None and gone.done()):
        try:
            await asyncio.wait({task} if gone is None else {task, gone},
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    if task.done():
        task.result()


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # read: an error nobody waits for any more is not logged as lost


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
            d = self.lease.drop_lapsed()
            if d is not None:
                self.lost(d, lapse_reason(d))

    def lost(self, d: Driver, reason: str) -> None:
        """`d` is no longer in the lease (its caller dropped it): stop the needle, disarm, then
        tell the clients (any thread)."""
        try:
            log.warning("driver lost; stopping the needle", client=d.client, reason=reason)
            stop_and_disarm(self.pen, reason)
            with contextlib.suppress(Exception):
                self.on_lost(d, reason)
        finally:
            self.lease.acted()


async def on_own_thread(fn: Callable[..., T], *args: Any) -> T:
    """A driver's loss acted on (`Watchdog.lost`: stop, disarm, clients told) in a thread of its
    own, as the close's stop: never queued behind the loop's shared pool, which blocking work
    (a session's start, a calibration's store) may fill. Shielded: a caller cancelled
    meanwhile (its connection closed) still has its loss acted on. One thread per loss (the
    lease dropped once), so a flood of requests starts none."""
    return await asyncio.shield(asyncio.wrap_future(run_in_new_thread(fn, *args,
                                                                      name="smp-driver-lost")))


def lapse_reason(d: Driver) -> str:
    """Why a driver whose lease ran out lost the pen (the watchdog's, or a claim's, words)."""
    return f"no heartbeat from {d.client} for {d.lease_ms} ms"
