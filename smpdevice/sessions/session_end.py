"""How a treatment session ends: `close()` (its summary recorded, the aftercare sheet) or
`suspend()` (left open in the log, to be resumed), and the quiet needle stop and disarm that
both, and a pass cut short, use. The base of `TreatmentSession` (session.py).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from smpdevice.control import PenController, State
from smpdevice.errors import SmpError
from smpdevice.outcomes import SessionOutcome
from smpdevice.passlog import PassLog
from smpdevice.sessions.pass_counter import PassCounter
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.session_records import close_session_record, session_summary

LATCHED_STATES = ("fault", "estop", "disconnected")  # they say more than a lost set-up


class SessionEnding:
    """close / suspend; what TreatmentSession sets up in its __init__ is declared here."""

    pen: PenController
    passlog: PassLog
    profile: TreatmentProfile
    session_id: str
    stop_requested: bool
    outcome: SessionOutcome | None
    recording: Any
    setup_lost: str | None
    calibration_lapsed: str | None
    _ended: str | None
    _recorder: PassCounter
    _skin_holder: object
    _log: Any

    def judged_pen_state(self) -> str:
        """The pen's state as the session's outcome is judged on: a pen that stopped answering
        while a pass was set up is a lost pen's (`link_lost`, left open, exit 6), though its
        reports may still flow and the controller still reads armed or idle."""
        state = self.pen.state.value
        if self.setup_lost is not None and state not in LATCHED_STATES:
            return "disconnected"
        return state

    def _stop_quietly(self) -> None:
        # Armed too: a start may still be on its way (Ctrl-C while starting); the stop is
        # queued behind it and stops what it starts.
        if self.pen.state in (State.ARMED, State.RUNNING):
            try:
                self.pen.stop_needle()
            except SmpError as exc:
                self._log.error("could not stop the needle; the pen's lease will", error=str(exc))

    def close(self, today: date | None = None) -> tuple[dict, str]:
        """Disarm, record the session's summary, and return (summary, aftercare sheet).

        The summary carries the session's `outcome` (`self.outcome` too) and the planned pass
        count; a session that did not play every planned pass says so on the sheet.
        """
        self._ended = "closed"  # first: a play thread between passes arms no further pass
        recording = getattr(self, "recording", None)  # the frames' file and hash (15.3)
        try:
            self._wind_down()
        except BaseException:
            if recording is not None:  # sealed: an open recording would take the next frames
                recording.seal()
            raise
        summary, sheet, self.outcome = close_session_record(
            self.passlog, self.session_id, self.profile, today=today,
            stop_requested=self.stop_requested, pen_state=self.judged_pen_state(),
            recording=recording.seal() if recording is not None else None,
            closed_at=self.pen.record_now())
        self._log.info("session closed", passes=summary.get("passes"),
                       outcome=self.outcome.value)
        return summary, sheet

    def suspend(self) -> dict:
        """Like `close()` but leave the session OPEN in the log, to be resumed once the cause
        (fault, E-stop, lost pen) is cleared (`smp run --resume`); return the summary so far."""
        self._ended = "suspended"  # first, as in close()
        try:
            self._wind_down()
        finally:  # sealed whatever happened: an open recording would take the next frames
            if getattr(self, "recording", None) is not None:  # finished, though unlinked
                self.recording.seal()
        summary = session_summary(self.passlog, self.session_id, self.profile,
                                  stop_requested=self.stop_requested,
                                  pen_state=self.judged_pen_state())
        self.outcome = SessionOutcome(summary["outcome"])
        self._log.info("session suspended (left open)", passes=summary.get("passes"),
                       outcome=self.outcome.value)
        return summary

    def _wind_down(self) -> None:
        self.pen.remove_inline_telemetry_reader(self._recorder)
        self._stop_quietly()
        self._disarm_quietly()
        # this session's client floor ends with it; another open session's stays
        self.pen._hold_client_skin(self._skin_holder, None, refuse_empty=False)

    def _disarm_quietly(self) -> None:
        if self.pen.state is State.ARMED:
            try:
                self.pen.disarm()
            except SmpError as exc:  # the pen latched a fault meanwhile: still record
                self._log.warning("disarm refused", error=str(exc))
