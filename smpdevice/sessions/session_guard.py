"""What a session checks around a pass, apart from running it (session.py): its callbacks
before anything is sent, one play at a time (and which thread plays, so `close()` from another
thread can wait for that pass to be recorded), a calibration that lapsed or a pen lost while a
pass is set up, what is left of the plan once a pass was recorded, and the calibration that
drove each pass. The base of `TreatmentSession`, on `SessionEnding`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from smpdevice import checks
from smpdevice.control import State
from smpdevice.control.calibration import CalibrationError, require_calibration
from smpdevice.control.pen import connected
from smpdevice.control.states import StateError
from smpdevice.errors import SmpError
from smpdevice.sessions import playable
from smpdevice.sessions.pass_counter import PassResult
from smpdevice.sessions.profiles import PlannedPass
from smpdevice.sessions.session_end import SessionEnding


def check_callbacks(on_progress: object, should_stop: object) -> None:
    """InvalidArgument, before the pen is touched, for a callback that can never be called
    (`play(on_progress=5)` used to start the needle, then fail with a bare TypeError)."""
    checks.callback_or_none("on_progress", on_progress,
                            "a function taking one PassProgress")
    checks.callback_or_none("should_stop", should_stop,
                            "a function taking no argument and returning True to stop")


class PassGuards(SessionEnding):
    """The checks around a pass; `TreatmentSession` sets their state up in its __init__."""

    results: list[PassResult]
    remaining: list[tuple[int, PlannedPass]]
    _cut_short: str | None
    _playing: threading.Lock
    # the calibrations that drove passes, other than the one the session was opened with
    pass_calibrations: list[dict]
    _opened_calibration: str | None
    _stops_at_begin: int | None  # the pen's stops_asked when the open pass began

    def _lost_while_setting_up(self, index: int, exc: SmpError) -> None:
        """The pen did not answer while pass `index` was set up (before its record and its
        needle): play() ends as for a pen lost mid-pass, nothing new recorded. Its reports may
        still flow, so the session is marked lost (`link_lost`: left open, exit 6)."""
        self._log.warning("pen lost while setting up a pass", index=index, error=str(exc))
        self.setup_lost = str(exc)
        self._cut_short = (f"the pen stopped answering while pass {index + 1} was set up "
                           f"({exc})")

    def _calibration_lapsed_before(self, index: int) -> bool:
        """Whether the pen's calibration no longer holds (it expired: sessions last hours, a
        calibration 30 days from its minute) before pass `index`: then play() ends as for any
        pass not played, without an error, saying why (`calibration_lapsed`, `_cut_short`)."""
        exc = self._calibration_refusal()
        if exc is None:
            return False
        self._log.warning("calibration no longer valid: pass not begun", index=index,
                          error=str(exc))
        self.calibration_lapsed = str(exc)
        self._cut_short = f"pass {index + 1} was not begun: {exc}"
        if self.pen.state is State.ARMED:  # armed for the pass before: nothing may start now
            self._disarm_quietly()
        return True

    def _calibration_refusal(self) -> CalibrationError | None:
        """Why the pen's calibration may not be used now (as arming judges it), or None."""
        pen = self.pen
        try:
            require_calibration(pen.calibration, connected(pen.identity, pen.port_url).serial,
                                simulated_pen=pen.simulated, port=pen.port_url,
                                now=pen.validity_now())
        except CalibrationError as exc:
            return exc
        return None

    def _note_calibration(self, pass_id: str, index: int) -> str | None:
        """The id of the calibration pass `pass_id` runs on (the pen's, just armed); one other
        than the session's own (`set_calibration` between passes) is kept in
        `pass_calibrations`, which close() records in the summary."""
        calibration = self.pen.calibration
        if calibration is None:
            return None
        if calibration.calibration_id != self._opened_calibration:
            self.pass_calibrations.append({
                "pass_id": pass_id, "index": index,
                "calibration_id": calibration.calibration_id,
                "offset_mm": calibration.offset_mm, "gain": calibration.gain})
        return calibration.calibration_id

    @contextlib.contextmanager
    def _pass_begun(self) -> Iterator[None]:
        """Around recording a pass's begin: under the gate close() and suspend() set `_ended`
        by, so one from another thread either comes first (this pass is refused, the pen
        disarmed again, nothing recorded) or finds the pass open and waits for its record."""
        with self._pass_gate:
            ended = self._ended
            if ended is None:
                self._stops_at_begin = self.pen.stops_asked  # a close's stop from now on wins
                yield
                return
        self._disarm_quietly()  # closed or suspended from another thread meanwhile
        raise playable.ended_while_arming(self.session_id, ended)

    def _played(self, planned: PlannedPass, played: int) -> None:
        """Once a pass was recorded, however it ended (Ctrl-C too), take it out of `remaining`
        (a pass that ended early leaves its remainder, as a resume counts it)."""
        if len(self.results) > played:
            result = self.results[-1]
            self.remaining = playable.left_after(
                self.remaining, result.index, planned, result,
                self.profile.zones[planned.zone].period_ms)

    @contextlib.contextmanager
    def _one_at_a_time(self, action: str) -> Iterator[None]:
        """Refuse, before the pen is touched, a pass in a session that is closed or suspended
        (a Play button pressed after closing used to arm the pen, then fail), while this
        session plays in another thread (the same pass would be played twice), and after a
        pass that ended early (going on needs a resume). Marks which thread plays (for
        close() and suspend() from another one)."""
        playable.require_playable(self.session_id, self._ended, action)
        if not self._playing.acquire(blocking=False):
            raise StateError(
                f"{action}() refused: session {self.session_id} is already playing (a play() "
                "or run_pass() that has not returned); nothing was sent to the pen. Wait for "
                "it to return, or stop it with its should_stop callback.")
        try:
            self._play_thread = threading.get_ident()  # close() from its callback: refused
            playable.require_playable(self.session_id, self._ended, action)  # closed meanwhile
            playable.require_not_cut_short(self.session_id, self._cut_short, action)
            yield
        finally:
            self._play_thread = None
            self._playing.release()
