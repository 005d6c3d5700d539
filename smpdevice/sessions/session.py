"""A treatment session: open it, play its passes on the pen, record every pass, close it.

A **pass** is one stretch of needle activity from start to stop. Its record is begun (durably)
*before* the needle starts, checkpointed while it runs, and ended with how it ended. If the log
cannot be written, the needle is stopped first: it never runs while it cannot be recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from smpdevice.control import PenController, State
from smpdevice.control.pen import connected
from smpdevice.control.states import StartOvertaken
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkError
from smpdevice.outcomes import SessionOutcome
from smpdevice.passlog import PassLog, PassLogError, PassOutcome
from smpdevice.sessions import playable, players
from smpdevice.sessions.pass_counter import (
    PassCounter,
    PassProgress,
    PassResult,
    pen_counters,
)
from smpdevice.sessions.preflight import check_open_args, pass_settings, preflight
from smpdevice.sessions.profiles import (
    PlannedPass,
    TreatmentProfile,
    profile_hash,
)
from smpdevice.sessions.screening import Screening
from smpdevice.sessions.session_guard import (
    OpeningWatch,
    PassGuards,
    check_callbacks,
    upset_words,
)

log = structlog.get_logger("smpdevice.sessions.session")

CHECKPOINT_EVERY_S = 0.5
POLL_S = 0.02


class TreatmentSession(PassGuards):
    """One session of one client on one pen. Open with `TreatmentSession.open(...)`."""

    def __init__(self, pen: PenController, passlog: PassLog, profile: TreatmentProfile,
                 session_id: str, technician: str, *, calibration_id: str | None = None) -> None:
        self.pen = pen
        self.passlog = passlog
        self.profile = profile
        self.session_id = session_id
        self.technician = technician
        self.results: list[PassResult] = []
        self.stop_requested = False  # the technician asked to stop (Ctrl-C, a stop request)
        # why a stop came, when not the technician's ask (the service: "driver lost: ws-2"),
        # read where a pass is told stopped; cheap, no side effect, any thread
        self.stop_cause: Callable[[], str | None] | None = None
        self.outcome: SessionOutcome | None = None  # set by close()
        # (plan index, pass) still to play: the whole plan, or what a resume left (remainders)
        self.remaining: list[tuple[int, PlannedPass]] = list(enumerate(profile.plan))
        self.recording: Any = None  # the frames' recording (15.3): set at open, at a resume
        # set by a resume: a pass cut by a host crash the pen could not count (it may repeat)
        self.resume_notes: list[str] = []
        self._ended: str | None = None  # "closed" or "suspended": no pass is played after it
        players.hold(self)  # before the pen is touched: a refused second player leaves nothing
        # why a pass ended before the plan did: no further play()/run_pass() in this part
        self._cut_short: str | None = None
        self._playing = threading.Lock()  # one play()/run_pass() at a time (a double click)
        self._play_thread: int | None = None  # which thread plays (close() from it: refused)
        self._pass_gate = threading.Lock()  # `_ended` set, or a pass begun: one at a time
        self._open_pass: str | None = None  # begun and not yet ended: close() waits for it
        self._init_guards()  # what play() is judged under (session_guard.py)
        # counted from every report as read, whatever the integrator's listeners (R06, R07)
        self._recorder = PassCounter()
        serial = connected(pen.identity, pen.port_url).serial
        self._log = log.bind(session_id=session_id, pen_serial=serial)
        # the pen stopped answering while a pass was set up (why): judged a lost pen's
        self.setup_lost: str | None = None
        # the calibration stopped holding (it expired) before a pass: why (left open, exit 7)
        self.calibration_lapsed: str | None = None
        # Layer 2 guards this client's floor while this session is open: a holder of its own,
        # so another session's opening or closing on the pen never drops it
        self._skin_holder = object()
        pen._hold_client_skin(self._skin_holder, profile.skin.epidermis_mm, refuse_empty=False)
        pen.add_inline_telemetry_reader(self._recorder)
        # the pen closed by the program is no lost link (judged_pen_state)
        self._closed_from: State | None = None
        pen.state_listeners.add(self._note_pen_state, name="session pen-close watch")
        # a pass on a calibration other than the checked one its record names: listed
        self._opened_calibration = calibration_id or getattr(pen.calibration, "calibration_id",
                                                             None)
        opened = self._played_on(pen.calibration)  # its fit too: a refit under its id differs
        self._opened_fit = opened if opened and opened["calibration_id"] == \
            self._opened_calibration else None
        self.pass_calibrations: list[dict] = []

    @classmethod
    def open(
        cls,
        pen: PenController,
        passlog: PassLog,
        profile: TreatmentProfile,
        *,
        technician: str,
        screening: Screening,
        before_record: Callable[[], None] | None = None,
    ) -> TreatmentSession:
        """Check everything a session needs, then record its opening.

        Refuses (with the reason) on: a positive screening answer, a missing/expired/other
        pen's calibration, a profile outside this pen's envelope, a pen not idle.
        `before_record`: called after every check, right before the opening is recorded; what
        it raises refuses the session, nothing recorded (a service's session.stop since). The
        checks are made again after it: the header names the calibration they passed on.
        """
        check_open_args(pen, passlog, profile, screening)
        screening.require_clear()
        calibration = preflight(pen, profile, technician)
        from smpdevice.envelope import envelope_record  # the limits in force, in the header

        identity = connected(pen.identity, pen.port_url)
        with OpeningWatch(pen) as counts:  # a latch or stop from here on ends play()
            if before_record is not None:
                before_record()
                calibration = preflight(pen, profile, technician)  # what the hook left in force
            session_id = passlog.open_session(
                technician=technician,
                client_ref=profile.client_ref,
                session_kind=profile.session_kind.value,
                pen_serial=identity.serial,
                firmware_version=identity.firmware_version,
                calibration_id=calibration.calibration_id,
                profile_hash=profile_hash(profile),
                screening=screening.as_record(),
                simulated=pen.simulated,
                envelope=envelope_record(pen.zones),
                profile=profile.model_dump(mode="json"),  # the plan, recoverable by a resume
                footswitch=pen.footswitch,  # the installation's mode, in the header (issue 15.4)
                opened_at=pen.record_now(),  # on the pen's clock, as its passes (sim_time.py)
            )
            session = cls(pen, passlog, profile, session_id, technician,
                          calibration_id=calibration.calibration_id)  # the one the header names
            session.keep_opening_counts(counts)
        from smpdevice.replay.recorder import start_recording  # issue 15.3: the raw frames

        session.recording = start_recording(pen, passlog, session_id, profile, technician,
                                            screening, opened_on=counts.counts)
        session._log.info("session opened", passes=len(profile.plan), simulated=pen.simulated)
        return session

    # ------------------------------------------------------------------ passes

    def play(
        self,
        on_progress: Callable[[PassProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[PassResult]:
        """Play the profile's plan pass by pass. Stops at the first pass that does not complete,
        when `should_stop()` says so (checked before each pass, once it is armed and while it
        runs), and when a fault, an E-stop or a lost link leaves the pen unable to begin the
        next pass.

        Each pass played leaves `remaining` (completed: gone; not: its remainder, as a resume
        counts it). Once a play() ended before the plan did, play() and run_pass() are refused
        (StateError, nothing sent): the session goes on only through suspend() and a resume,
        which checks it again, records it and is replayed part by part. Returns every pass of
        this session so far. A callback that cannot be called: InvalidArgument, nothing sent."""
        check_callbacks(on_progress, should_stop)
        with self._one_at_a_time("play"):
            try:
                return self._play(on_progress, should_stop)
            finally:
                if self.remaining and self._cut_short is None:
                    self._cut_short = playable.why_cut_short(
                        self.results, self.stop_requested, self.pen.state.value)

    def _play(self, on_progress, should_stop) -> list[PassResult]:
        if should_stop is not None and self.recording is not None:  # an input, replayed
            should_stop = self.recording.watch_stop(should_stop)
        self._watch_from_now()
        for index, planned in list(self.remaining):
            self._between_passes()  # recorded: a replay applies what came before it here
            if self._asked_to_stop(should_stop):  # not over a latch since: its outcome, below
                self.stop_requested = True
                break
            if self._ended_between(index):
                break  # a stop, a latch or a lost link since play() began, cleared or not
            if self._latched_between(index):
                break  # latched or lost between passes (not cleared): recorded at the close
            if self._ended is not None:
                break  # closed or suspended from another thread meanwhile: no further pass
            if self._calibration_lapsed_before(index):
                break  # nothing of this pass is sent: recalibrate, then resume
            played = len(self.results)
            try:
                result = self._run_pass(planned, index, on_progress, should_stop)
            except SmpError as exc:
                if not isinstance(exc, PassLogError) and self._upset_since() is not None and (
                        self._ended_between(index)):  # latched as it was set up, cleared since
                    break
                if isinstance(exc, LinkError) and self.pen.state not in (State.FAULT,
                                                                         State.ESTOP):
                    self._lost_while_setting_up(index, exc)  # a latch says more: below
                    break
                if isinstance(exc, PassLogError):
                    raise
                if self.pen.state not in playable.LATCHED:
                    # it expired while the pass was set up (the arm refused, in whatever words)
                    if self._calibration_lapsed_before(index):
                        break
                    raise
                self._not_begun(index, exc)  # latched or lost as it was set up: recorded
                break
            finally:
                self._played(planned, played)
            if result.outcome is not PassOutcome.completed:
                break
        return self.results

    def run_pass(
        self,
        planned: PlannedPass,
        *,
        index: int | None = None,
        on_progress: Callable[[PassProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> PassResult:
        """Run one pass; Ctrl-C (KeyboardInterrupt) stops the needle, records, re-raises.
        Refused (nothing sent) in a closed or suspended session, after a pass that ended
        before its target (suspend and resume to go on), for a zone the profile has no
        settings for, and while the session plays in another thread. Updates `remaining`.
        `index`: None files it under the first pass left it equals (zone and target), else
        past the plan; a plan index must name a pass left that it equals (InvalidArgument)."""
        check_callbacks(on_progress, should_stop)
        with self._one_at_a_time("run_pass"):
            played = len(self.results)
            self._watch_from_now()
            try:
                return self._run_pass(planned, index, on_progress, should_stop)
            finally:
                self._played(planned, played)
                self._cut_short = self._cut_short or playable.cut_short_by(
                    self.results, played, self.stop_requested, self.pen.state)

    def _run_pass(self, planned, index, on_progress, should_stop) -> PassResult:
        settings = pass_settings(self.profile, planned)
        index = playable.plan_index(  # the plan's pass it is, else one past the plan
            self.remaining, len(self.profile.plan), planned, index,
            lambda: [p.index for p in self.passlog.passes(self.session_id)])
        pen = self.pen
        if pen.state is State.ARMED and pen.zone_name != planned.zone:
            pen.disarm()
        pen.set_zone(planned.zone)
        pen.set_setpoints(depth_mm=settings.depth_mm, speed_hz=settings.speed_hz,
                          duty_pct=settings.duty_pct, period_ms=settings.period_ms)
        if pen.state is State.IDLE:
            pen.arm()
            refusal = self._calibration_refusal() if pen.state is State.IDLE else None
            if refusal is not None:  # the arm's own transition refused it (its guard: the
                raise refusal  # calibration expired meanwhile): never record a dead pass
        self._await_next_telemetry(after_last=False)  # a base from after the stop (22a)
        base = pen.telemetry  # a resume after a host crash counts the pass from it
        played = self._played_on(pen.calibration)  # armed (swaps are idle only): it plays on
        with self._pass_begun():  # closed or suspended from another thread meanwhile: refused
            pass_id = self.passlog.begin_pass(
                self.session_id, index=index, zone=planned.zone, depth_mm=settings.depth_mm,
                speed_hz=settings.speed_hz, duty_pct=settings.duty_pct,
                period_ms=settings.period_ms, started_at=self.pen.record_now(),
                pen_counters=pen_counters(base, pen.lease_ms), calibration=played,
            )  # durable before the needle moves: a failure here means it never starts
            self._open_pass = pass_id
        plog = self._log.bind(pass_id=pass_id, zone=planned.zone, index=index,
                              calibration_id=self._note_calibration(pass_id, index, played))
        outcome, detail, started = PassOutcome.completed, "", False
        try:  # from its record on, whatever is raised (should_stop too) ends the pass recorded
            self._recorder.begin(pen.telemetry)
            if (upset := self._upset_since()) is not None:  # latched as it was set up (or
                self._stop_quietly()  # lost), cleared since: its outcome, never a start
                outcome, detail = self._outcome_from_state(), (
                    f"{upset_words(upset)} as the pass was set up: the needle never started")
            elif self._asked_to_stop(should_stop):  # asked while arming: never start
                self.stop_requested = True
                self._stop_quietly()
                cause = self._named_stop()
                outcome, detail = PassOutcome.stopped, (
                    f"{cause}, before the needle started" if cause
                    else "stop requested before the needle started")
            else:
                # the controller keeps its end too; a stop since the pass began (close() from
                # another thread) wins over this start
                # a pass planned in impressions: the controller stops it at its count, as
                # the pen reports it, when this thread is held up (review 16)
                pen.end_pass_after(planned.impressions)
                pen._recorded_pass_next(pass_id)  # in its pass log: no needle_work line
                pen.start_needle(run_for_s=planned.duration_s, zone=planned.zone,
                                 unless_stopped_since=self._stops_at_begin)
                started = True
                outcome, detail = self._supervise(pass_id, planned, index, on_progress,
                                                  should_stop)
        except KeyboardInterrupt:
            self.stop_requested = True
            if self.recording is not None:
                self.recording.note_stop("Ctrl-C")
            self._stop_quietly()  # left armed, as after any stop asked: it is replayed as one
            self._finish(pass_id, index, planned, PassOutcome.stopped, "interrupted (Ctrl-C)", plog)
            raise
        except PassLogError as exc:
            self._stop_quietly()  # never run the needle while it cannot be recorded
            self._finish(pass_id, index, planned, PassOutcome.log_error, str(exc), plog)
            raise
        except SmpError as exc:
            self._stop_quietly()
            outcome, detail = self._outcome_from_state(), str(exc)
            upset = None if started else self._upset_since()
            if upset is not None:  # latched as it was set up, cleared since (or lost, back)
                detail = f"{upset_words(upset)} as the pass was set up: the needle never started"
            elif isinstance(exc, StartOvertaken):  # another caller's Stop won over this start
                self.stop_requested = True
                outcome, detail = PassOutcome.stopped, (
                    f"{self._named_stop() or 'a stop was asked'}, before the needle started")
            if not started and self._calibration_lapsed_before(index):  # expired since the arm
                detail = f"the needle never started: {exc}"
                self._cut_short = f"pass {index + 1} ended before its needle started: {exc}"
            if getattr(getattr(exc, "reason", None), "name", "") == "FOOTSWITCH_UP":  # no dot
                outcome = PassOutcome.footswitch_released
                detail = f"{exc}: press the pedal, then resume the session"
        except BaseException as exc:  # a display callback, anything: never leave it running
            self._stop_quietly()
            self._disarm_quietly()  # re-raised to a program that may never disarm it
            self._finish(pass_id, index, planned, PassOutcome.stopped, repr(exc), plog)
            raise
        return self._finish(pass_id, index, planned, outcome, detail, plog)

    def _supervise(self, pass_id, planned, index, on_progress, should_stop):
        pen = self.pen
        started = pen.clock.now()  # the controller's clock: virtual in tests
        next_checkpoint = started + CHECKPOINT_EVERY_S
        while True:
            now = pen.clock.now()
            if pen.state is not State.RUNNING:
                if pen.state is State.ARMED and pen.stopped_at_planned_end is not None:
                    self._own_stops_done(0)  # the controller's stop at the planned end
                    return PassOutcome.completed, ""  # its planned end, while this thread was held
                outcome, upset = self._outcome_from_state(), self._upset_since()
                why = (str(pen.last_fault or "") or (upset_words(upset) if upset else "")
                       if outcome is not PassOutcome.stopped
                       else self._named_stop() or "")  # a dead-man's stop: its cause
                if outcome is PassOutcome.footswitch_released:
                    why = "the footswitch was released: the pen stopped the needle"
                return outcome, why or "stopped by the controller (pass time limit or a request)"
            stats = self._recorder.snapshot()
            elapsed = now - started
            if on_progress is not None:
                on_progress(PassProgress(index, len(self.profile.plan), planned.zone, elapsed,
                                         planned.duration_s, stats.strokes, stats.impressions,
                                         planned.impressions, pen.telemetry))
            done = (planned.duration_s is not None and elapsed >= planned.duration_s) or (
                planned.impressions is not None and stats.impressions >= planned.impressions
            )
            if done or self._asked_to_stop(should_stop):  # a latch: the state, next turn
                pen.stop_needle()
                if done:
                    self._own_stops_done(1)  # this stop is the pass's own: no Stop of the session
                    return PassOutcome.completed, ""
                self.stop_requested = True
                return PassOutcome.stopped, self._named_stop() or "stop requested"
            if now >= next_checkpoint:
                self.passlog.checkpoint(pass_id, stats)
                self._log.info("checkpoint", pass_id=pass_id, index=index,
                               strokes=stats.strokes, impressions=stats.impressions)
                next_checkpoint = now + CHECKPOINT_EVERY_S
            pen.pause(POLL_S)

    def _finish(self, pass_id, index, planned, outcome, detail, plog) -> PassResult:
        try:
            self._await_next_telemetry()  # the counters up to the stop (each report counts)
            stats = self._recorder.end()
            fault = (self.pen.last_fault if outcome in (PassOutcome.fault, PassOutcome.estop)
                     else None)
            self.passlog.end_pass(
                pass_id, outcome=outcome, stats=stats,
                ended_at=self.pen.stopped_at_planned_end or self.pen.record_now(),
                fault_code=int(fault.faults) if fault else None,
                fault_names=fault.faults.names if fault else None,
            )
        finally:  # recorded (or not recordable): a close() from another thread goes on
            self._open_pass = None
        plog.info("pass", outcome=outcome.value, strokes=stats.strokes,
                  impressions=stats.impressions, depth_mean_mm=stats.depth_mean_mm,
                  speed_mean_hz=stats.speed_mean_hz, detail=detail)
        result = PassResult(pass_id, index, planned.zone, outcome, stats, detail)
        self.results.append(result)
        return result
