"""Which session.run or .resume may still open: one received before a stop, or before the pen
entered a fault, an E-stop or a lost link, never does, not after a clear or a reconnect; one
received while the pen is latched or lost is refused at once (review 19)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from smpdevice.errors import SmpError

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService


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
        itself). Under the lock."""
        from smpdevice.control.states import SAFE, State

        if seen is None:
            return
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
