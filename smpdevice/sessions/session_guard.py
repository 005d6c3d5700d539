"""What a session checks around a pass, apart from running it (session.py): its callbacks
before anything is sent, one play at a time (and which thread plays, so `close()` from another
thread can wait for that pass to be recorded), a calibration that lapsed or a pen lost while a
pass is set up, what is left of the plan once a pass was recorded, and the calibration that
drove each pass. The base of `TreatmentSession`, on `SessionEnding`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from smpdevice import checks
from smpdevice.control import State
from smpdevice.control.calibration import CalibrationError, require_calibration
from smpdevice.control.pen import connected
from smpdevice.control.states import CLOSED_BY_PROGRAM, SAFE, StateError
from smpdevice.errors import SmpError
from smpdevice.passlog import PassOutcome
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
    _opened_fit: dict[str, Any] | None  # its id, offset_mm and gain, when known
    _stops_at_begin: int | None  # the pen's stops_asked the open pass starts under
    # what this play() or run_pass() was asked under: the pen's stops_asked (kept past each
    # pass's own stops) and interruptions; one since, however cleared, ends it
    _stops_seen: int
    _upsets_seen: int
    upset_between: str | None  # "estop", "fault", "disconnected": one ended play() (judged)
    # every interruption (state, reason, before_index) since play() began, oldest first, as
    # the close summary records them (`interruptions_between`): no pass was begun, so no pass
    # record can say them (rev 20)
    interruptions_between: list[dict[str, Any]]
    stop_cause: Callable[[], str | None] | None  # why a stop came (session.py)

    def _init_guards(self) -> None:
        """What play() and run_pass() are judged under, before the pen's listeners are set."""
        self._stops_at_begin = None
        self._stops_seen = self._upsets_seen = 0  # set when play()/run_pass() is asked
        self.upset_between = None  # a latch or lost link ended play() (cleared)
        self.interruptions_between = []
        self._heard_interruptions = []  # by `_note_pen_state`, as the pen counts them
        self._heard_at_opening, self._heard_opening = [], []

    def _lost_while_setting_up(self, index: int, exc: SmpError) -> None:
        """The pen did not answer while pass `index` was set up (before its record and its
        needle): play() ends as for a pen lost mid-pass, nothing new recorded. Its reports may
        still flow, so the session is marked lost (`link_lost`: left open, exit 6)."""
        self._log.warning("pen lost while setting up a pass", index=index, error=str(exc))
        self.setup_lost = str(exc)
        self._cut_short = (f"the pen stopped answering while pass {index + 1} was set up "
                           f"({exc})")
        self._note_between(index, lost=f"the pen stopped answering while the pass was set "
                                       f"up ({exc})")

    def _not_begun(self, index: int, exc: SmpError) -> None:
        """Pass `index` was refused while it was set up (before its record and its needle):
        the pen faulted, latched an E-stop or was lost meanwhile; the close records it."""
        self._log.warning("pass not begun", index=index, error=str(exc))
        self._note_between(index)

    def _latched_between(self, index: int) -> bool:
        """Whether the pen is latched or lost before pass `index` (not cleared: its state
        says it): play() ends here; what came since it began is recorded for the close."""
        if self.pen.state in (State.IDLE, State.ARMED):
            return False
        self._note_between(index)
        return True

    def _note_between(self, index: int, lost: str | None = None) -> None:
        """Keep, for the close summary, every fault, E-stop and lost link since play() began
        (pass `index` not begun), oldest first; `lost`: the pen stopped answering while it
        was set up, kept as a lost link when the pen counted none (its state never changed)."""
        noted = [{"state": state, "reason": reason[:200], "before_index": index}
                 for state, reason in self._interruptions_since()]
        if not noted and lost is not None:
            noted = [{"state": State.DISCONNECTED.value, "reason": lost[:200],
                      "before_index": index}]
        self.interruptions_between.extend(noted)

    def _interruptions_since(self) -> list[tuple[str, str]]:
        """(state, reason) of each interruption the pen counted since play() began, oldest
        first. The count (`pen.interruptions`) says how many; the session's state listener
        heard each with its reason (the controller keeps only the latest): read once every
        change made so far was told (`_told`) and none came meanwhile. One counted before
        the session listened (while it was opened): the pen's latest if it is the last one,
        else kept as "unknown" (counted, its reason not kept)."""
        pen = self.pen
        for _ in range(3):  # a new one while reading: read again (it is one of them too)
            count = int(pen.interruptions)
            pen._told()  # the listeners heard every state change made so far
            heard = list(self._heard_interruptions)
            if int(pen.interruptions) == count:
                break
        wanted = max(count - self._upsets_seen, 0)
        kept = [(s.value, r) for s, r in heard[max(len(heard) - wanted, 0):]] if wanted else []
        missing = wanted - len(kept)
        early = [(s.value, r) for s, r in self._heard_opening[:missing]]  # the oldest ones
        kept, missing = early + kept, missing - len(early)  # (heard as it was opened)
        if missing and not kept and pen.last_interruption is not None:
            state, reason = pen.last_interruption
            kept, missing = [(state.value, reason)], missing - 1
        return [("unknown", "came before the session listened (as it was opened): its reason "
                            "is not kept")] * missing + kept

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

    @staticmethod
    def _played_on(calibration: Any) -> dict[str, Any] | None:
        """What a pass's record keeps of the calibration it is played on (the pen's as armed:
        `set_calibration` is idle only), so each pass names its own (rev 20); None without."""
        if calibration is None:
            return None
        return {"calibration_id": calibration.calibration_id,
                "offset_mm": calibration.offset_mm, "gain": calibration.gain}

    def _note_calibration(self, pass_id: str, index: int,
                          played: dict[str, Any] | None) -> str | None:
        """The id of the calibration pass `pass_id` runs on (`played`: as its record names
        it); one other than the session's own (`set_calibration` between passes) is also kept
        in `pass_calibrations`, which close() records in the summary."""
        if played is None:
            return None
        if played["calibration_id"] != self._opened_calibration or \
                played != (self._opened_fit or played):  # (a refit kept under the same id)
            self.pass_calibrations.append({"pass_id": pass_id, "index": index, **played})
        return str(played["calibration_id"])

    # the pen's counts (interruptions, stops_asked) taken as the opening was decided (before
    # `before_record` and the opening record): the first play() or run_pass() keeps them
    _opening_counts: tuple[int, int] | None = None

    def _watch_from_now(self) -> None:
        """play() or run_pass() was asked: a stop, fault, E-stop or lost link from now on,
        whoever asks it and however it is cleared, ends it (nothing resumes by itself). The
        first one watches from the opening's checks on instead (`keep_opening_counts`): one
        that came while the opening was recorded, cleared since, ends it too (review 19)."""
        kept, self._opening_counts = self._opening_counts, None
        self._heard_opening = self._heard_at_opening if kept else []  # (the first one's)
        self._upsets_seen, self._stops_seen = kept or opening_counts(self.pen)
        self.upset_between = None

    def keep_opening_counts(self, counts: tuple[int, int] | OpeningWatch) -> None:
        """The session was opened (or resumed) on the checks made when the pen's counts were
        `counts` (`opening_counts(pen)`, read right before `before_record`; an `OpeningWatch`
        also heard each interruption since, with its reason): its first play() or run_pass()
        ends on a stop, fault, E-stop or lost link since then."""
        if isinstance(counts, OpeningWatch):  # (this session's own listener is on by now)
            self._heard_at_opening = counts.heard()
            counts = counts.counts
        self._opening_counts = counts

    # each interruption heard since the opening's counts, until the session listened itself
    # (`OpeningWatch`), and that list again for the first play() or run_pass() only
    _heard_at_opening: list[tuple[State, str]]
    _heard_opening: list[tuple[State, str]]

    # `smp replay`'s: called at each check between passes (replay/pen.py `await_between`)
    between_point: Callable[[], None] | None = None

    def _between_passes(self) -> None:
        """play() checks what came before pass after pass: its point is recorded (`between`
        on `/input`), so a replay makes the same check after the same inputs (review 19)."""
        if self.recording is not None:
            self.recording.between_passes()
        if self.between_point is not None:
            self.between_point()

    def _asked_to_stop(self, should_stop: Callable[[], bool] | None) -> bool:
        """`should_stop()`, unless a fault, E-stop or lost link came since play() began: that
        is what ended it then, whoever also asked a stop (the service's E-stop does), so the
        outcome is the latch's (left open), never `interrupted` (review 19)."""
        asked = should_stop is not None and should_stop()  # asked always: a replay's point
        return asked and self._upset_since() is None  # read after: an E-stop counts first

    def _upset_since(self) -> tuple[State, str] | None:
        """The fault, E-stop or lost link (state, reason) since play()/run_pass() was asked,
        cleared or reconnected since or not; None if none came."""
        pen = self.pen
        if pen.interruptions == self._upsets_seen:
            return None
        return pen.last_interruption or (State.FAULT, "the pen latched")

    def _named_stop(self) -> str | None:
        return self.stop_cause() if self.stop_cause is not None else None

    def _outcome_from_state(self) -> PassOutcome:
        state = self.pen.state  # closed by the program (pen.close()): judged as it was closed
        if state is State.DISCONNECTED and self._closed_from is not None:
            state = self._closed_from
        upset = self._upset_since()  # latched or lost since play(), cleared or back: says why
        if upset is not None and state in (State.IDLE, State.ARMED):
            state = upset[0]
        return playable.outcome_from_state(state, self.pen.stopped_by_footswitch)

    def _own_stops_done(self, own: int) -> None:
        """A pass completed: the stops it took (`own`: this session's, the controller's at its
        planned end) are no stop of the session; any other since (another thread's) is."""
        planned = 1 if self.pen.stopped_at_planned_end is not None else 0
        self._stops_seen = (self._stops_at_begin or 0) + own + planned

    def _ended_between(self, index: int) -> bool:
        """Before pass `index` is set up: a fault, E-stop or lost link since play() began,
        cleared or reconnected since (a latch not cleared: the pen's state says it), or a stop
        another caller asked since the last pass ended, ends play() here: nothing is sent.
        A latch leaves the session resumable (its outcome is the latch's: exit 4, 5 or 6)."""
        pen, upset = self.pen, self._upset_since()
        if upset is not None and pen.state in (State.IDLE, State.ARMED):
            self.upset_between = upset[0].value
            self._note_between(index)
            self._cut_short = (f"pass {index + 1} was not begun: {upset_words(upset)} came "
                               "after play() began (cleared or reconnected since); nothing "
                               "resumes by itself: resume the session to go on")
            self._log.warning("pen interrupted between passes", index=index,
                              state=upset[0].value, reason=upset[1])
            self._disarm_quietly()
            return True
        if upset is None and pen.stops_asked > self._stops_seen:
            self.stop_requested = True  # another caller's Stop: as the technician's
            self._cut_short = f"pass {index + 1} was not begun: a stop was asked"
            return True
        return False

    def _await_next_telemetry(self, timeout_s: float = 0.1, after_last: bool = True) -> None:
        """Up to `timeout_s` on the pen's clock, or one report period more when the pen
        reports slower, for a report received after the reply that ended the last request
        (a stop, an arm: never one from before it, review 22a) and fed to the counter;
        `after_last`: one received after this call too (the counts to a pass's end)."""
        pen, recorder, clock = self.pen, self._recorder, self.pen.clock
        seq = recorder.last_seq if after_last else None
        deadline = clock.now() + pen._report_wait_s(timeout_s)
        while clock.now() < deadline and pen.state is not State.DISCONNECTED:
            t = pen._report_after_requests()
            if (t is not None and recorder.last_seq == t.telemetry_seq
                    and t.telemetry_seq != seq):
                return
            pen.pause(0.002)

    @contextlib.contextmanager
    def _pass_begun(self) -> Iterator[None]:
        """Around recording a pass's begin: under the gate close() and suspend() set `_ended`
        by, so one from another thread either comes first (this pass is refused, the pen
        disarmed again, nothing recorded) or finds the pass open and waits for its record."""
        with self._pass_gate:
            ended = self._ended
            if ended is None:
                # what the start is decided under (any stop since play() or the last pass
                # wins, a close's from now on too), never above the pen's count
                self._stops_at_begin = min(self._stops_seen, self.pen.stops_asked)
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


class OpeningWatch:
    """`opening_counts(pen)` read as a session's opening is decided, and each fault, E-stop
    or lost link the pen enters from then on heard with its reason (the controller keeps only
    the latest's), until the session listens itself: `with OpeningWatch(pen) as counts:` up
    to `keep_opening_counts(counts)`. Two or more while the opening is recorded are then
    named in `interruptions_between`, not "unknown" (session 21)."""

    def __init__(self, pen: Any) -> None:
        self.pen = pen
        self._heard: list[tuple[State, str]] = []
        self._lock = threading.Lock()
        pen.state_listeners.add(self._note, name="session opening watch")  # before the read
        self.counts = opening_counts(pen)

    def _note(self, old: State, new: State, reason: str) -> None:
        if (new in SAFE or new is State.DISCONNECTED) and reason != CLOSED_BY_PROGRAM:
            with self._lock:  # as control/safety.py counts them (session_end `_note_pen_state`)
                self._heard.append((new, reason))

    def heard(self) -> list[tuple[State, str]]:
        self.pen._told()  # every change made so far was told
        with self._lock:
            return list(self._heard)

    def __enter__(self) -> OpeningWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pen.state_listeners.remove(self._note)


def opening_counts(pen: Any) -> tuple[int, int]:
    """(interruptions, stops_asked) of `pen`, read in that order: the controller counts a
    latch in both, stops first (safety.py), so a latch between the reads is seen as one."""
    return int(pen.interruptions), int(pen.stops_asked)


def upset_words(upset: tuple[State, str]) -> str:
    """An interruption in words: "an E-stop (E-stop requested by the host)"."""
    state, reason = upset
    what = {State.ESTOP: "an E-stop", State.FAULT: "a fault"}.get(state, "a lost link")
    return f"{what} ({reason[:200]})"
