"""The asyncio seam: awaitables over the same `PenController` (one engine, one state machine).

    async with await AsyncPenController.connect("pensim://pen1", calibration=cal) as pen:
        await pen.set_zone("crown")
        await pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=100)
        await pen.arm()
        await pen.start_needle()
        async for t in pen.telemetry(max_queue=32):
            ...
        await pen.estop()

Blocking controller calls run, in order, in one dedicated worker thread and are awaited with
`asyncio.wrap_future`, so the event loop never blocks on the pen. Safety stops never queue
behind that worker: `estop()` runs at once in a thread of its own for every call (the
controller latches and writes ESTOP in the caller's thread), and `stop_needle()` has a worker
of its own. A stop, once asked, is never taken back: `stop_needle()` and `close()` cancelled
meanwhile run to their end, then raise CancelledError. Stops are idempotent, so a flood of them
never builds a backlog: a `stop_needle()` that comes while another is queued and has not begun
shares that run (one under way and one queued at most; each caller's run began after it asked).
Telemetry and state changes arrive as async iterators fed from the controller's listeners; a
slow consumer loses the oldest items, never blocks the reader thread. A lost link ends
`telemetry(until_lost=True)` with LinkLost; the default stream waits on for the reconnect.
Any close ends every stream (also the controller's own `pen.close()` after a lost link).
After `close()` the workers are gone: every call then runs in a thread of its own, so it gets
the blocking controller's own answer (StateError "not connected"; close() and the stops return
quietly), and the async iterators end.

A request whose caller stops waiting (`asyncio.wait_for`, `task.cancel()`) once its blocking
call began cannot be taken back from the worker, so it is undone instead, as the blocking
engine does for a given-up NEEDLE_START or ARM: a start is stopped at once (a start still
waiting for the depth never goes out) and again if it got through; an arm that got through is
disarmed; a speed check (`calibration_spin`) is stopped by its own `spin_cancel()` token (the
needle stopped and disarmed, one still queued never starts). The cancellation completes once
the call has ended and been undone, also when the task is cancelled again meanwhile (the later
cancellations are held until then), so nothing it asked for happens behind the caller's back.
Not `call(fn)` (an arbitrary function runs to its end).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from smpdevice import checks
from smpdevice.control.aio_lanes import END as _END
from smpdevice.control.aio_lanes import LinkLost as LinkLost  # re-exported
from smpdevice.control.aio_lanes import SharedRuns as SharedRuns  # re-exported (pen_service)
from smpdevice.control.aio_lanes import (
    _Feed,
    _quietly,
    _through_cancels,
    stream_watch,
)
from smpdevice.control.aio_lanes import run_in_new_thread as run_in_new_thread
from smpdevice.control.calibrating import SpinStopped
from smpdevice.control.calibration import Calibration
from smpdevice.control.controller import PenController
from smpdevice.control.pen import PenIdentity, PenTelemetry, Setpoints
from smpdevice.control.states import State
from smpdevice.envelope import ZoneEnvelope

T = TypeVar("T")
MAX_QUEUE = 10_000


class _SpinTurn:
    """One speed check of the call worker, and whether its caller gave it up: a spin given up
    before its turn never starts; one under way is ended by its own `spin_cancel()` token, so
    a cancel that comes as it ends never touches the next caller's spin."""

    def __init__(self, pen: PenController) -> None:
        self.pen = pen
        self.cancel = pen.spin_cancel()

    def run(self, speed_hz: float, duration_s: float) -> float:
        """In the call worker, at the spin's turn."""
        if self.cancel.is_set():
            raise SpinStopped(f"the speed check at {speed_hz:g} Hz was not started: its "
                              "caller gave it up before its turn")
        return self.pen.calibration_spin(speed_hz, duration_s, stops_before=self.pen.spin_stops,
                                         cancel=self.cancel)

    def give_up(self) -> None:
        """Any thread: the spin, if under way, stops the needle now; if not, it never starts."""
        self.cancel.set()


class AsyncPenController:
    """Awaitable methods over one `PenController`. Build with `await connect(...)` or wrap."""

    def __init__(self, pen: PenController) -> None:
        checks.instance("pen", pen, PenController, "a PenController")
        self.pen = pen
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smp-aio-call")
        self._stops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smp-aio-stop")
        # stop_needle() runs on the stop lane: one under way, one queued at most
        self._needle_stops = SharedRuns(lambda fn: self._submit(self._stops, fn))
        self._lock = threading.Lock()  # `closed` and the executors' shutdown change together
        self._closed = False
        self._feeds: set[_Feed] = set()
        # the controller's own close() ends every stream, whatever state it closed from (a
        # lost link changes no state at close: only this tells the streams waiting on it)
        pen.close_listeners.add(self._end_feeds)

    @classmethod
    async def connect(cls, port: str, **kwargs: Any) -> AsyncPenController:
        """Open `port` (the handshake runs in a worker thread) and wrap the controller. Given
        up by its caller (cancelled, a `wait_for` timing out), it waits for the handshake to
        end and closes what it connected, so the port is free again, then re-raises."""
        future = run_in_new_thread(functools.partial(PenController.connect, port, **kwargs),
                                   name="smp-aio-connect")
        try:
            pen = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            def undo() -> None:  # in a thread: the handshake may run on for its timeouts
                try:
                    connected = future.result()
                except BaseException:  # never connected (or cancelled before it began)
                    return
                _quietly(connected.close)

            await _through_cancels(run_in_new_thread(undo, name="smp-aio-undo"))
            raise
        return cls(pen)

    async def close(self) -> None:
        """Stop the needle, disarm and close the port; then end the worker threads.

        Safe to call twice: PenController.close() is, and later calls run in threads of their own.
        """
        try:
            await self._stop_lane(self.pen.close)
        finally:
            with self._lock:
                self._closed = True
                self._calls.shutdown(wait=False, cancel_futures=True)
                self._stops.shutdown(wait=False)
            self._end_feeds()

    def _end_feeds(self) -> None:
        """Any thread: end every open stream (a closed pen sends nothing more)."""
        with self._lock:
            feeds = list(self._feeds)
        for feed in feeds:
            feed.push(_END)

    async def __aenter__(self) -> AsyncPenController:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def closed(self) -> bool:
        """True once close() has run: calls no longer use the worker threads."""
        return self._closed

    def _submit(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any,
                **kwargs: Any) -> Future[T]:
        # A shut-down executor raises a bare RuntimeError; after close() the controller
        # itself must answer (StateError, or a quiet return for close and the stops).
        with self._lock:
            if not self._closed:
                return executor.submit(fn, *args, **kwargs)
        return run_in_new_thread(functools.partial(fn, *args, **kwargs), name="smp-aio-closed")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking function (a controller method, a session) in the call worker."""
        return await asyncio.wrap_future(self._submit(self._calls, fn, *args, **kwargs))

    async def _stop_lane(self, fn: Callable[..., T], *args: Any) -> T:
        """A stop (or close) is never taken back: a caller cancelled meanwhile (a connection
        that closed) gets its CancelledError once the stop has run."""
        return await _through_cancels(self._submit(self._stops, fn, *args))

    async def _request(self, fn: Callable[..., T], *args: Any,
                       undo: Callable[[], None] | None = None, stop_first: bool = False,
                       **kwargs: Any) -> T:
        """`call`, but a caller who gives up leaves nothing behind: see the module's notes."""
        future = self._submit(self._calls, fn, *args, **kwargs)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # it began: what it did (or may still do) is undone
                await self._given_up(future, undo, stop_first)
            raise

    async def _given_up(self, future: Future[Any], undo: Callable[[], None] | None,
                        stop_first: bool) -> None:
        """Undo a call its caller gave up. Each step runs in a thread (never on the loop); a
        further cancellation of this task neither stops it nor ends the wait for it."""
        if stop_first and self.pen.state is State.ARMED:
            # a stop now makes a start still on its way refuse (the controller's stop epoch)
            stop = self._submit(self._stops, _quietly, self.pen.stop_needle)
            await _through_cancels(stop)
        ended: Future[None] = Future()

        def undo_if_done(call: Future[Any]) -> None:  # in the thread that ended the call
            def body() -> None:
                try:
                    if undo is not None and not call.cancelled() and call.exception() is None:
                        _quietly(undo)
                finally:
                    ended.set_result(None)

            run_in_new_thread(body, name="smp-aio-undo")  # never blocks the worker or loop

        future.add_done_callback(undo_if_done)
        await _through_cancels(ended)

    # ------------------------------------------------------------------ reads (never block)

    @property
    def state(self) -> State:
        return self.pen.state

    @property
    def identity(self) -> PenIdentity | None:
        return self.pen.identity

    @property
    def simulated(self) -> bool:
        return self.pen.simulated

    @property
    def zone(self) -> ZoneEnvelope | None:
        return self.pen.zone

    @property
    def calibration(self) -> Calibration | None:
        return self.pen.calibration

    @property
    def last_telemetry(self) -> PenTelemetry | None:
        return self.pen.telemetry

    # ------------------------------------------------------------------ safety stops

    async def estop(self) -> None:
        """Emergency stop: runs at once in its own thread, ahead of anything queued."""
        await asyncio.wrap_future(run_in_new_thread(self.pen.estop, name="smp-aio-estop"))

    async def stop_needle(self) -> None:
        """End the pass; never waits behind the call worker (a spin, a session step). A stop is
        idempotent: callers that come while one is queued and not yet begun share it."""
        await _through_cancels(self.stop_needle_run())

    def stop_needle_run(self) -> Future[None]:
        """The shared `stop_needle` run that begins after now, for a caller that waits its own
        way (the service's pen.stop). Never cancel it: it is everyone's. Any thread."""
        return self._needle_stops.next_run(self.pen.stop_needle)

    # ------------------------------------------------------------------ requests

    async def set_zone(self, zone: str) -> ZoneEnvelope:
        return await self._request(self.pen.set_zone, zone)

    async def set_setpoints(self, *, depth_mm: float, speed_hz: float, duty_pct: float,
                            period_ms: float) -> Setpoints:
        return await self._request(self.pen.set_setpoints, depth_mm=depth_mm,
                                   speed_hz=speed_hz, duty_pct=duty_pct, period_ms=period_ms)

    async def set_calibration(self, calibration: Calibration | None) -> None:
        await self._request(self.pen.set_calibration, calibration)

    async def arm(self) -> None:
        """idle -> armed; given up once begun, an arm that got through is disarmed."""
        await self._request(self.pen.arm, undo=self.pen.disarm)

    async def disarm(self) -> None:
        await self._request(self.pen.disarm)

    async def start_needle(self, *, settle_timeout_s: float = 1.0,
                           run_for_s: float | None = None, unless_stopped_since: int | None = None,
                           zone: str | None = None) -> None:
        """armed -> running; given up once begun, the start is stopped (never left running).
        `run_for_s`, `unless_stopped_since`, `zone`: as `PenController.start_needle`, except
        that `unless_stopped_since` defaults to `stops_asked` read as this is asked (not at its
        turn): a stop, E-stop, fault or lost link while the start waits behind other calls
        wins (StartOvertaken). `zone`: in any other zone at its turn, not started (StateError)."""
        since = self.pen.stops_asked if unless_stopped_since is None else unless_stopped_since
        await self._request(self.pen.start_needle, settle_timeout_s=settle_timeout_s,
                            run_for_s=run_for_s, unless_stopped_since=since, zone=zone,
                            undo=self.pen.stop_needle, stop_first=True)

    async def retract(self) -> None:
        await self._request(self.pen.retract)

    async def clear_faults(self) -> None:
        await self._request(self.pen.clear_faults)

    async def begin_calibration(self) -> None:
        await self._request(self.pen.begin_calibration)

    async def calibration_move(self, actuator_mm: float, **kwargs: Any) -> float:
        return await self._request(self.pen.calibration_move, actuator_mm, **kwargs)

    async def calibration_spin(self, speed_hz: float, duration_s: float = 1.0) -> float:
        """The speed check; given up once begun, it is stopped (its own `spin_cancel()`), and the
        cancellation completes once the spin has ended, its needle stopped and disarmed."""
        turn = _SpinTurn(self.pen)
        future = self._submit(self._calls, turn.run, speed_hz, duration_s)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel():  # under way (or about to be): stop it, wait for its end
                turn.give_up()
                await self._given_up(future, None, False)
            raise

    async def end_calibration(self, calibration: Calibration | None = None) -> None:
        await self._request(self.pen.end_calibration, calibration)

    async def wait_for_state(self, *states: State, timeout_s: float = 2.0) -> State:
        """Wait in a thread of its own (a wait must not hold up the call worker)."""
        return await asyncio.to_thread(self.pen.wait_for_state, *states, timeout_s=timeout_s)

    # ------------------------------------------------------------------ streams

    async def telemetry(self, *, max_queue: int = 256,
                        until_lost: bool = False) -> AsyncIterator[PenTelemetry]:
        """Every telemetry frame from now on; the oldest are dropped if the consumer lags.

        `until_lost=True`: a lost link ends the stream with `LinkLost` (a LinkError, after the
        frames before it), at once if the link is already lost. False: the stream outlives a
        lost link and goes on with the frames after `reconnect()` (the service's pump reads
        so); `state_changes()` says the loss. Either way it ends quietly at close() (this
        wrapper's or the controller's own, also one made before the stream or wrapper began,
        also after a lost link)."""
        checks.whole_number("max_queue", max_queue, 1, MAX_QUEUE)
        checks.instance("until_lost", until_lost, bool, "True or False")
        feed = self._open_feed(max_queue)
        push, watch = feed.push, stream_watch(feed, until_lost=until_lost)
        self.pen.add_telemetry_listener(push)
        self.pen.state_listeners.add(watch)
        self._end_if_offline(feed, until_lost)  # looked after adding: no close or loss unseen
        try:
            async for item in self._drain(feed):
                yield item
        finally:
            self.pen.remove_telemetry_listener(push)
            self.pen.state_listeners.remove(watch)

    def _why_offline(self) -> str:
        fault = self.pen.last_fault
        return fault.reason if fault is not None else "the pen is not connected"

    async def state_changes(self, *, max_queue: int = 256
                            ) -> AsyncIterator[tuple[State, State, str]]:
        """(old, new, reason) for every state change from now on; ends quietly at close()
        (this wrapper's or the controller's own: after its change to `disconnected`, if any:
        a close after a lost link changes no state)."""
        checks.whole_number("max_queue", max_queue, 1, MAX_QUEUE)
        feed = self._open_feed(max_queue)
        on_change = stream_watch(feed, until_lost=False, changes=True)
        self.pen.state_listeners.add(on_change)
        self._end_if_offline(feed, until_lost=False)  # looked after adding: no close unseen
        try:
            async for item in self._drain(feed):
                yield item
        finally:
            self.pen.state_listeners.remove(on_change)

    def _open_feed(self, max_queue: int) -> _Feed:
        """A stream's feed; close() ends every open one (after it, a new one ends at once)."""
        feed = _Feed(asyncio.get_running_loop(), max_queue)
        with self._lock:
            if self._closed:
                feed.push(_END)
            else:
                self._feeds.add(feed)
        return feed

    def _end_if_offline(self, feed: _Feed, until_lost: bool) -> None:
        """A stream begun on a closed pen ends at once (a closed pen sends nothing more); with
        `until_lost`, one begun on a lost link raises LinkLost at once."""
        if self._closed or self.pen.closed:
            feed.push(_END)
        elif until_lost and self.pen.state is State.DISCONNECTED:
            feed.push(LinkLost(self._why_offline()))

    async def _drain(self, feed: _Feed) -> AsyncIterator[Any]:
        """Items of `feed` until its end (END, or a LinkLost raised)."""
        try:
            while True:
                item = await feed.queue.get()
                if item is _END:
                    return
                if isinstance(item, LinkLost):
                    raise item
                yield item
        finally:
            with self._lock:
                self._feeds.discard(feed)
