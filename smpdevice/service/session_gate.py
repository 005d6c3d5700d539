"""Which session.run or .resume may still open: one received before a stop, or before the pen
entered a fault, an E-stop or a lost link, never does, not after a clear or a reconnect; one
received while the pen is latched or lost is refused at once (review 19).

And on which calibration (review 20): the newest the service's store holds for its pen, as
`smp run` takes it as it connects (`install_newest`), whatever left an older one in use (a
save the pen could not take, latched by an E-stop meanwhile; one `calibration.auto` saved but
could not install; one another program saved: `smp calibrations import`). It is installed
when the pen is back in idle from a latch or a loss (`follow_store`) and at every session's
opening; a newest the pen may not use is refused with `smp run`'s words, never replaced by an
older one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.errors import SmpError

if TYPE_CHECKING:
    from smpdevice.control.calibration import Calibration
    from smpdevice.control.states import State
    from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")


def through_service(text: str) -> str:
    """A refusal's text for a client of the service: the service holds the port, so the pen
    is calibrated through it."""
    return text.replace("smp calibrate --port PORT", "smp calibrate --service URL")


def install_newest(service: PenService) -> Calibration | None:
    """What `smp run` does as it connects, for the service (any thread but the controller's):
    the pen's newest calibration in the service's store, installed on this host when it is not
    the one in use and the pen is idle (else nothing is installed: the caller's own checks
    refuse a pen that is not idle). None when the store holds none for this pen (the one in
    use, given at the start, is judged as before). A newest the pen may not use now (expired,
    dated ahead of the clock, a simulator's on a real pen) is refused as `smp run` refuses it
    (CalibrationError), never replaced by an older one."""
    from smpdevice.calibration.store_sql import CalibrationStoreError
    from smpdevice.control.calibration import CalibrationError, require_calibration
    from smpdevice.control.states import State
    from smpdevice.paths import NotADatabaseError
    from smpdevice.service.calibrating import service_store, service_words

    pen = service.pen
    try:
        newest = service_store(service, readonly=True).latest(pen.serial)
    except (CalibrationStoreError, NotADatabaseError) as exc:  # no --db to pass here
        why = service_words(str(exc)).split("; give the path of")[0]
        raise CalibrationStoreError(f"the service's calibration store cannot be read, so no "
                                    f"session opens: {why}") from None
    current = pen.calibration
    if newest is None or (current is not None
                          and current.calibration_id == newest.calibration_id):
        return newest
    try:  # the check installing makes, with `smp run`'s words
        require_calibration(newest, pen.serial, simulated_pen=pen.simulated,
                            now=pen.validity_now())
    except CalibrationError as exc:
        in_use = current.calibration_id if current is not None else "none"
        raise CalibrationError(
            f"the newest calibration of pen {pen.serial} in the service's store, "
            f"{newest.calibration_id} (the pen uses {in_use}), cannot be used, and no "
            f"session runs on an older one: {through_service(str(exc))}") from None
    if pen.state is not State.IDLE:
        return None
    pen.set_calibration(newest)
    service.calibration_problem = None
    log.info("stored calibration installed", calibration_id=newest.calibration_id,
             replaced=current.calibration_id if current is not None else None)
    return newest


def follow_store(service: PenService) -> None:
    """Once, as the service is built: whenever the pen is back in idle from a latch (a clear)
    or a loss (a reconnect), the store's newest is installed (`install_newest`), in the call
    worker, queued before the clear's own answer: before any request received after it."""
    from smpdevice.control.states import SAFE, State

    def on_state(old: State, new: State, reason: str) -> None:  # the controller's thread
        loop = service.loop
        # a reconnect reaches idle from connecting (states.py), a clear from a latch
        if new is State.IDLE and (old in SAFE or old in (State.DISCONNECTED, State.CONNECTING)) \
                and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to install
                loop.call_soon_threadsafe(_queue_install, service)

    service.pen.add_state_listener(on_state)


_INSTALLS: set[asyncio.Future[Any]] = set()  # in flight: a task nobody holds may be collected


def _queue_install(service: PenService) -> None:
    task = asyncio.ensure_future(service.apen.call(_install_after_return, service))
    _INSTALLS.add(task)
    task.add_done_callback(_INSTALLS.discard)


def _install_after_return(service: PenService) -> None:
    """In the call worker. A refusal is logged (and said again by the next session's opening);
    a session still leaving its thread installs nothing here (its opening would)."""
    if service.work.busy():
        return
    try:
        install_newest(service)
    except SmpError as exc:
        log.warning("stored calibration not installed", reason=str(exc))


class SessionStopped(SmpError):
    """A session.stop came before the session.run (or .resume) it would have opened."""


@dataclass(frozen=True)
class Receipt:
    """What a session.run or .resume was received at: `stops` (`stops_asked`), and `held`:
    the pen's state if it was latched (fault, estop) or disconnected then, else None."""

    stops: int
    held: str | None = None


class SessionGate:
    """SessionWork's count of stops: `_stops` (session.stop, E-stop, the service's close),
    `_stop_why` the latest's, `_why_at` the pen's interruptions when it came."""

    service: PenService
    _stops: int
    _stop_why: str
    _why_at: int

    @property
    def stops_asked(self) -> int:
        """Stops and the pen's interruptions so far (fault, E-stop or lost pen entered, whoever
        caused it; the controller's own rule, `pen.interruptions`): read when a request is
        received."""
        return self._stops + self.service.pen.interruptions

    def received(self) -> Receipt:
        """As a session.run or .resume is received: `stops_asked`, and the pen's state if it is
        latched or lost then (its refusal comes from the checks while it stays so)."""
        from smpdevice.control.states import SAFE, State

        stops, state = self.stops_asked, self.service.pen.state  # in that order: none unseen
        held = state.value if state in SAFE or state is State.DISCONNECTED else None
        return Receipt(stops, held)

    def _refuse_if_stopped(self, seen: Receipt | None) -> None:
        """SessionStopped when a stop or interruption came since the request (`seen`: what
        it was received at), even one cleared since; or when the pen was latched or lost as
        it was received and is not now (cleared or reconnected since: nothing resumes by
        itself). Then the store's newest calibration installed (`install_newest`, or its
        refusal): looked at as the opening is launched and again right before its first
        record, whose checks run after it. Under the lock (one store read, an install on this
        host: no frame is sent)."""
        if seen is not None:
            self._refuse_stops(seen)
        install_newest(self.service)

    def _refuse_stops(self, seen: Receipt) -> None:
        from smpdevice.control.states import SAFE, State

        pen = self.service.pen
        if self.stops_asked != seen.stops:
            why, last = self._stop_why, pen.last_interruption
            if pen.interruptions != self._why_at and last is not None:  # the pen's, latest
                why = f"the pen's {last[0].value} ({last[1][:80]})"
            raise SessionStopped(f"the session was not opened: {why} came after "
                                 "this request and before its turn, and a stop wins over every "
                                 "session on its way, also once cleared. Send it again to "
                                 "start.")
        state = pen.state
        if seen.held is not None and state not in SAFE and state is not State.DISCONNECTED:
            raise SessionStopped(f"the session was not opened: the pen was {seen.held} when "
                                 "this request was received, and a clear or reconnect since "
                                 "never lets it open. Send it again to start.")
