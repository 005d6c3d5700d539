"""How a treatment session ends: `close()` (its summary recorded, the aftercare sheet) or
`suspend()` (left open in the log, to be resumed), and the quiet needle stop and disarm that
both, and a pass cut short, use. The base of `TreatmentSession` (session.py).
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Any

from firmware_protocol.codes import FirmwareState
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from smpdevice.control.states import CLOSED_BY_PROGRAM, SAFE, StateError
from smpdevice.errors import SmpError
from smpdevice.issues import show
from smpdevice.outcomes import SessionOutcome
from smpdevice.passlog import PassLog
from smpdevice.records.model import PassLogError
from smpdevice.sessions.aftercare import aftercare_sheet
from smpdevice.sessions.pass_counter import PassCounter
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.session_records import close_session_record, session_summary

LATCHED_STATES = ("fault", "estop", "disconnected")  # they say more than a lost set-up
# How long close() or suspend() from another thread waits, on the pen's clock, for the pass
# that play() runs there to be stopped and recorded (its stop, last report and record).
PLAY_END_WAIT_S = 10.0
SILENT_REPORTS = 3  # no byte for this many report periods: the link, not the pen, is silent
SILENCE_JUDGED_S = 0.1  # the controller's loop judges the silence within this past its limit


# The aftercare sheet counts years ahead (touch-up 3-6 years): a `today` this far from the end
# of the calendar is refused before the close is recorded.
LATEST_TODAY = date(date.max.year - 10, 12, 31)


def aftercare_day(today: object) -> date | None:
    """`close(today=...)` checked before anything is recorded (InvalidArgument): a `date` (a
    datetime's own date) from which the sheet's dates can be counted, or None (the pen's day)."""
    if today is None:
        return None
    if isinstance(today, datetime):
        today = today.date()
    if not isinstance(today, date):
        raise InvalidArgument(f"today={show(today)} is refused: it is not a "
                              "datetime.date; pass a date (datetime.date(2026, 12, 1)) or "
                              "leave it out for the pen's day. Nothing was recorded.")
    if today > LATEST_TODAY:
        raise InvalidArgument(f"today={today.isoformat()} is refused: the aftercare sheet's "
                              f"dates would pass the end of the calendar; allowed: up to "
                              f"{LATEST_TODAY.isoformat()}. Nothing was recorded.")
    return today


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
    _play_thread: int | None  # the thread in play()/run_pass(), None when none plays
    # held while `_ended` is set and while a pass is begun: a play thread either sees the
    # end before it records a pass, or close() sees that pass open (`_open_pass`)
    _pass_gate: threading.Lock
    _open_pass: str | None  # the pass recorded as begun and not yet ended
    _closed_from: State | None  # the pen's state when the program closed it (pen.close())
    pass_calibrations: list[dict]
    # each fault, E-stop or lost link entered (what the pen's `interruptions` counts), as
    # this session's state listener heard it: its reason (the pen keeps only the latest's)
    _heard_interruptions: list[tuple[State, str]]

    def _note_pen_state(self, old: State, new: State, reason: str) -> None:
        """A state listener: the controller's own close (`pen.close()`: CLOSED_BY_PROGRAM) is
        no lost link; the state it closed from still says a fault or an E-stop. Each
        interruption is kept with its reason: the close records those between passes."""
        if new is State.DISCONNECTED:
            self._closed_from = old if reason == CLOSED_BY_PROGRAM else None
        else:
            self._closed_from = None  # reconnected
        if (new in SAFE or new is State.DISCONNECTED) and reason != CLOSED_BY_PROGRAM:
            self._heard_interruptions.append((new, reason))  # as control/safety.py counts

    def judged_pen_state(self) -> str:
        """The pen's state as the session's outcome is judged on: a pen that stopped answering
        while a pass was set up is a lost pen's (`link_lost`, left open, exit 6), though its
        reports may still flow and the controller still reads armed or idle. A pen the
        program closed itself (the `with PenController` block ended first) is judged by the
        state it was closed from: not lost (`link_lost` is a cable or power)."""
        state = self.pen.state.value
        if self.setup_lost is not None and state not in LATCHED_STATES:
            return "disconnected"
        upset = getattr(self, "upset_between", None)  # play() ended on a latch cleared since
        if upset is not None and state not in LATCHED_STATES:
            return str(upset)
        closed_from = getattr(self, "_closed_from", None)
        if state == "disconnected" and closed_from is not None:
            return closed_from.value
        return state

    def _stop_quietly(self) -> None:
        # Armed too: a start may still be on its way (Ctrl-C while starting); the stop is
        # queued behind it and stops what it starts.
        if self.pen.state in (State.ARMED, State.RUNNING):
            try:
                self.pen.stop_needle()
            except SmpError as exc:
                self._log.error("could not stop the needle; the pen's lease will", error=str(exc))
        self._await_silence_judged()

    def _await_silence_judged(self) -> None:
        """A stop the pen did not confirm latches FAULT at once; over a dead link (no byte
        since a few reports' time) that is a lost pen, which the controller judges by itself
        once the link has been silent past its limit (DISCONNECTED: `link_lost`, exit 6, not a
        fault to clear). Wait for that judgment on the pen's clock, at most until the limit:
        nothing is sent, the lease stays held. A fault the pen reported, or a pen that still
        reports, is left as it is (a replay's recorded pen falls silent at its recording's
        end: never judged lost for that)."""
        pen = self.pen
        link, engine = getattr(pen, "link", None), getattr(pen, "_engine", None)
        if pen.state is not State.FAULT or link is None or engine is None:
            return
        reported = pen.telemetry.state if pen.telemetry is not None else None
        if reported in (FirmwareState.FAULT, FirmwareState.ESTOP):
            return  # the pen itself latched it (a jam): its fault stands
        period_s = 1.0 / max(int(getattr(engine, "telemetry_hz", 1) or 1), 1)
        heard_s = link.last_rx_s
        if pen.clock.now() - heard_s <= SILENT_REPORTS * period_s:
            return  # the pen still talks: its fault stands
        deadline_s = heard_s + engine.silence_limit_s() + SILENCE_JUDGED_S
        while (pen.state is State.FAULT and link.last_rx_s == heard_s
               and pen.clock.now() < deadline_s and link.lost is None):
            pen.pause(0.01)

    def close(self, today: date | None = None) -> tuple[dict, str]:
        """Disarm, record the session's summary, and return (summary, aftercare sheet).

        The summary carries the session's `outcome` (`self.outcome` too) and the planned pass
        count; a session that did not play every planned pass says so on the sheet. Called
        again (twice at once: an "End session" button pressed twice) it sends nothing and
        returns the first close's result; after suspend() it raises StateError. A close
        recorded whose receipt could not be anchored raises PassLogError, yet is ended: called
        again it returns that close's summary and sheet (read back from the log).
        """
        today = aftercare_day(today)  # before anything is recorded: the sheet is never lost
        return self._ended_once("closed", lambda: self._close(today))

    def _ended_once(self, ended: str, end: Any) -> Any:
        """Run `end` (close or suspend) once per session: callers from other threads wait for
        the first and get its result (nothing sent twice, the recording replays); the other
        ending after one succeeded is refused. A call that failed leaves it to be called again."""
        action = "close" if ended == "closed" else "suspend"
        engine = getattr(self.pen, "_engine", None)
        if engine is not None and engine.in_loop():  # review 18e: before anything, lock or not
            raise StateError(f"{action}() refused: it was called on the controller's loop "
                             "thread (a state or telemetry listener), which cannot stop the "
                             "needle and wait for the pass; nothing was changed. Call it from "
                             "another thread.")
        self._refuse_from_play_callback(action)  # before waiting: that pass would never end
        lock = self.__dict__.setdefault("_end_lock", threading.Lock())  # atomic: one lock
        lock.acquire()
        try:
            done = self.__dict__.get("_end_result")
            if done is not None and done[0] == ended:
                return done[1]  # nothing sent again: the first call's result
            if done is not None:
                raise StateError(
                    f"{action}() refused: this session was already {done[0]}"
                    + (" (left open in the log: resume it with `smp run --resume "
                       f"{self.session_id}` to go on, then close it)" if done[0] == "suspended"
                       else "") + "; nothing was sent.")
            result = end()
            self.__dict__["_end_result"] = (ended, result)
            return result
        finally:
            lock.release()

    def _close(self, today: date | None) -> tuple[dict, str]:
        # first: a play thread between passes arms no further pass
        open_pass = self._mark_ended("closed")
        recording = getattr(self, "recording", None)  # the frames' file and hash (15.3)
        try:
            self._await_open_pass(open_pass, "close")
            self._wind_down()
        except BaseException:
            if recording is not None:  # sealed: an open recording would take the next frames
                recording.seal()
            raise
        try:
            summary, sheet, self.outcome = close_session_record(
                self.passlog, self.session_id, self.profile, today=today,
                stop_requested=self.stop_requested, pen_state=self.judged_pen_state(),
                recording=recording.seal() if recording is not None else None,
                closed_at=self.pen.record_now(),
                calibrations=getattr(self, "pass_calibrations", None),
                interruptions=getattr(self, "interruptions_between", None))
        except PassLogError:
            kept = self._committed_close(today)
            if kept is not None:  # closed in the log (its receipt not anchored): the end
                self.__dict__["_end_result"] = ("closed", kept)  # result kept for a retry
            raise
        self._log.info("session closed", passes=summary.get("passes"),
                       outcome=self.outcome.value)
        return summary, sheet

    def kept_close(self) -> tuple[dict, str] | None:
        """(summary, sheet) of a close the log holds though close() raised PassLogError (its
        receipt not anchored: review 18h), as close() would return it again; None else."""
        done = self.__dict__.get("_end_result")
        return done[1] if done is not None and done[0] == "closed" else None

    def _committed_close(self, today: date | None) -> tuple[dict, str] | None:
        """(summary, sheet) of a close the log holds though close_session raised (its receipt
        could not be anchored, review 18e), read back from the log; None if it is not closed.
        The sheet carries no receipt: the error that said so carried it."""
        try:
            record = self.passlog.session(self.session_id)
        except SmpError:
            return None
        if record.closed_at is None or record.summary is None:
            return None
        summary = dict(record.summary)
        self.outcome = SessionOutcome(summary["outcome"])
        sheet = aftercare_sheet(session_kind=self.profile.session_kind,
                                session_date=today or date.today(),
                                client_ref=self.profile.client_ref, summary=summary)
        return summary, sheet

    def suspend(self) -> dict:
        """Like `close()` but leave the session OPEN in the log, to be resumed once the cause
        (fault, E-stop, lost pen) is cleared (`smp run --resume`); return the summary so far.
        Called again it returns the first suspend's summary; after close() StateError."""
        return self._ended_once("suspended", self._suspend)

    def _suspend(self) -> dict:
        open_pass = self._mark_ended("suspended")  # first, as in close()
        try:
            self._await_open_pass(open_pass, "suspend")
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

    def _mark_ended(self, ended: str) -> str | None:
        """Set `_ended`; return the pass play() has open meanwhile (recorded as begun, not
        yet ended), or None. From play()'s own callback (on_progress, should_stop) with its
        pass open, that pass could not be recorded first: StateError, nothing changed."""
        with self._pass_gate:
            open_pass = self._open_pass
            self._refuse_from_play_callback("close" if ended == "closed" else "suspend")
            self._ended = ended
        return open_pass

    def _refuse_from_play_callback(self, action: str) -> None:
        """From play()'s own callback with its pass open, that pass could not be recorded
        first: StateError, nothing changed."""
        open_pass = self._open_pass
        if open_pass is not None and self._play_thread == threading.get_ident():
            raise StateError(
                f"{action}() refused: it was called from a callback of this session's "
                f"play() or run_pass(), whose pass {open_pass} is running and could not be "
                "recorded first; nothing was changed. Return True from should_stop, then "
                f"{action}() once play() returns.")

    def _await_open_pass(self, open_pass: str | None, action: str) -> None:
        """A pass that play() or run_pass() runs in another thread (an "End session" button
        pressed mid-pass): stop its needle and wait, on the pen's clock, until that thread
        recorded it; the session then ends as one the technician stopped (`interrupted`).
        StateError if it is not recorded within PLAY_END_WAIT_S (the needle stopped, the
        session left open: call it again once play() returns)."""
        if open_pass is None:
            return
        self.stop_requested = True  # the technician ended it mid-plan
        self._stop_quietly()
        pen, idle = self.pen, threading.Event()  # `idle` is never set: a plain timed wait
        deadline, offline_s = pen.clock.now() + PLAY_END_WAIT_S, 0.0
        while self._open_pass == open_pass and pen.clock.now() < deadline:
            if pen.state is not State.DISCONNECTED:
                pen.pause(0.01)
            elif offline_s < PLAY_END_WAIT_S:  # a closed pen's clock may stand still
                offline_s += 0.01
                idle.wait(0.01)
            else:
                break
        if self._open_pass == open_pass:
            raise StateError(
                f"{action}() waited {PLAY_END_WAIT_S:g} s for play() in another thread to "
                f"record its pass {open_pass}, and it has not (a callback of it blocks?); the "
                f"needle was stopped and the session left open. Call {action}() again once "
                "play() returns.")

    def _wind_down(self) -> None:
        self.pen.remove_inline_telemetry_reader(self._recorder)
        self.pen.state_listeners.remove(self._note_pen_state)
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
