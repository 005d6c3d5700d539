"""`smp replay`: load a session's recording (checked), replay it, name the first difference.

`replay_session` connects a fresh `PenController` on a virtual clock to the recorded pen
(`replay://`), plays the session's profile with a `TreatmentSession` whose passes go to a
pass log in memory, and compares three things with what was recorded, in this order:
the commands sent (decoded, see `smpdevice.replay.script` for what is tolerated), the
controller's state changes, and each pass's outcome and figures.

A resumed session is replayed part by part (`smpdevice.replay.parts`): each part into a fresh
controller, playing what its run played. Recorded host-side inputs (an operator's stop, an
E-stop request: `smpdevice.replay.inputs`) are applied at their points of the conversation.

A part whose recording was cut short (no MCAP footer: the host died; or a `truncated` marker:
the size cap, a full disk) is compared up to its end only (`cut_at`): past it the recorded
pen says nothing more, yet the run went on (or died) unrecorded, so the replayed session is
stopped there, the run's way out, and nothing it does past the end is a difference: no
command, no state change, no figure of the pass the recording ends in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError
from smpdevice.link.clock import VirtualTimeDriver
from smpdevice.records.frames import Recording, RecordingError
from smpdevice.replay.actions import CLEAR_WAIT_S, bind_actions, plugging_in
from smpdevice.replay.compare import cut_at, first_pass_difference, first_state_difference
from smpdevice.replay.inputs import ReplayInputs
from smpdevice.replay.memlog import MemoryPassLog
from smpdevice.replay.parts import LoadedSession, Part, load
from smpdevice.replay.pass_calibration import on_each_pass_s_own
from smpdevice.replay.pen import EARLY_TOLERANCE_S, Difference, ReplayPen
from smpdevice.replay.script import (
    build_script,
    records_inputs,
    session_entries,
)
from smpdevice.replay.start import opened_on, reach_start, recorded_start

__all__ = ["LoadedSession", "MemoryPassLog", "ReplayReport", "load", "replay_session"]

STEP_S = 0.005  # virtual time step: the pen reports every 10 ms
MAX_INPUTS = 10_000  # recorded inputs a replay applies (each may start a thread)
# A part with operator inputs replays them from threads of their own, as they came live (a
# client's E-stop beside the session's own thread), so two threads' order can land otherwise
# than recorded: such a part is replayed up to this many times before its difference counts.
# A change in the controller's behaviour differs every time.
INPUT_ATTEMPTS = 3


@dataclass
class ReplayReport:
    session_id: str
    recording: Path
    difference: Difference | None
    decisions: int = 0  # host decisions in the recording (every part's)
    matched: int = 0
    notes: list[str] = field(default_factory=list)
    parts: int = 1  # recorded parts: 1, or one per run of a resumed session
    part_results: list[Any] = field(default_factory=list)  # --into-sim: each part replayed

    @property
    def match(self) -> bool:
        return self.difference is None


# ------------------------------------------------------------------------------ replay

def replay_session(passlog: Any, session_id: str) -> ReplayReport:
    """Replay a recorded session against a fresh controller, part by part (see the module's
    docstring); the report names the first part that differs."""
    import smpdevice.replay  # noqa: F401  # registers replay://

    loaded = load(passlog, session_id)
    report = ReplayReport(loaded.session_id, loaded.recording.path, None, notes=loaded.notes)
    report.parts = len(loaded.parts)
    opened = _parts_opened_at(passlog, loaded)
    for part in loaded.parts:
        attempts = INPUT_ATTEMPTS if _has_inputs(part) else 1
        for attempt in range(1, attempts + 1):
            counted = report.decisions, report.matched, len(report.notes)
            difference = _replay_part(loaded, part, report, opened.get(part.number))
            if difference is None:
                if attempt > 1:
                    report.notes.append(f"{part.label}: matched on replay {attempt} of "
                                        f"{attempts} (its inputs come from other threads)")
                break
            if attempt < attempts:  # once more, from a fresh controller: count that one only
                report.decisions, report.matched = counted[0], counted[1]
                del report.notes[counted[2]:]
        if difference is not None:
            if report.parts > 1:  # name the part: its file, and which run it was
                difference = dataclasses.replace(difference, part=part.label)
            report.difference = difference
            break
    return report


def _parts_opened_at(passlog: Any, loaded: LoadedSession) -> dict[int, datetime]:
    """When each part's run opened (part 1) or resumed (part n) its session, as the pass log
    says: the time the replay judges the recorded calibration at, as live (review9b R04)."""
    times: dict[int, datetime] = {}
    with contextlib.suppress(TypeError, ValueError):
        times[1] = datetime.fromisoformat(str(loaded.record.opened_at))
    resumed = passlog.resumptions(loaded.session_id) if hasattr(passlog, "resumptions") else []
    for n, r in enumerate(resumed, 2):
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            times[n] = datetime.fromisoformat(str(r.get("resumed_at")))
    return {n: t for n, t in times.items() if t.tzinfo is not None}


def _has_inputs(part: Part) -> bool:
    rec = part.recording
    return records_inputs(rec) and bool(build_script(session_entries(rec)).inputs)


def _part_plan(profile: Any, part: Part) -> list[tuple[int, Any]]:
    """(plan index, pass) the part's run played: the whole plan, or its resumption's list."""
    from smpdevice.sessions.profiles import PlannedPass

    if part.passes_left is None:
        return list(enumerate(profile.plan))
    plan: list[tuple[int, Any]] = []
    for item in part.passes_left:
        index = int(item["index"])
        if index >= len(profile.plan):
            raise RecordingError(f"{part.label}: its resumption plays pass {index + 1} of a "
                                 f"plan of {len(profile.plan)}")
        target = ({"duration_s": float(item["duration_s"]), "impressions": None}
                  if item.get("duration_s") is not None
                  else {"duration_s": None, "impressions": int(item["impressions"])})
        try:
            planned = PlannedPass.model_validate({**profile.plan[index].model_dump(), **target})
        except ValueError as exc:
            raise RecordingError(f"{part.label}: pass {index + 1} left is invalid ({exc})"
                                 ) from None
        plan.append((index, planned))
    return plan


def _replay_part(loaded: Any, part: Part, report: ReplayReport,
                 opened_at: datetime | None = None) -> Difference | None:
    """One part into a fresh controller on a virtual clock, as its run started it, at the
    time it ran (`opened_at`: its calibration is judged then, not today)."""
    from simulators.clock import VirtualClock
    from smpdevice.control import PenController
    from smpdevice.control.calibration import Calibration
    from smpdevice.envelope import ZoneEnvelope
    from smpdevice.sessions.profiles import TreatmentProfile
    from smpdevice.sessions.session import TreatmentSession

    rec, meta = part.recording, part.recording.meta
    try:
        profile = TreatmentProfile.model_validate(meta["profile"])
        calibration = (Calibration.model_validate(meta["calibration"])
                       if meta.get("calibration") else None)
        zones = {str(k): ZoneEnvelope.model_validate(v) for k, v in meta["zones"].items()}
        lease_ms, telemetry_hz = int(meta["lease_ms"]), int(meta["telemetry_hz"])
        technician = str(meta["technician"])
        # The mode the session ran under (recorded since 15.4, else the session header's), not
        # this station's: a station set differently must not make a difference.
        footswitch = meta.get("footswitch") or getattr(loaded.record, "footswitch", None)
        footswitch = str(footswitch) if footswitch else "optional"
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{rec.path}: its metadata is incomplete or invalid ({exc})") from None
    plan = _part_plan(profile, part)
    start = recorded_start(meta)  # None: recorded before it was kept (replayed as before)
    entries = session_entries(rec)
    if not entries and cut_at(rec) is not None:  # the host died as it connected (review 12)
        report.notes.append(f"{part.label}: its recording ends before its session began ("
                            f"{rec.truncated or 'no end: the host died'}): nothing of it to "
                            "compare")
        return None
    session_script = build_script(entries)
    report.decisions += len(session_script.decisions)
    clock = VirtualClock()
    pen_side = ReplayPen(build_script(part.preamble), session_script, clock)
    pen_side.hold_after_handshake = start is not None  # (older recordings: as before)
    if records_inputs(rec):  # the operator's stops and E-stops, at their recorded points
        if len(session_script.inputs) > MAX_INPUTS:
            raise RecordingError(f"{rec.path.name} holds {len(session_script.inputs)} inputs, "
                                 f"more than a session's technician makes ({MAX_INPUTS}): it "
                                 "is no recording of this program")
        pen_side.inputs = ReplayInputs(session_script.inputs)
        pen_side.inputs.lose_link = pen_side.lose_link
        pen_side.inputs.plug_in = plugging_in(pen_side, clock)
        pen_side.mute_from_t_s = _last_word_before_silence(rec)
    pen_side.cut_at_s = cut_at(rec)
    if pen_side.cut_at_s is not None:
        report.notes.append(f"{part.label}: its recording ends before its run did ("
                            f"{rec.truncated or 'no end: the host died'}): compared up to its "
                            "end, where its replayed session is stopped")
    driver = VirtualTimeDriver(clock, STEP_S, name="replay-time")
    driver.start()
    states: list[tuple[str, str, float]] = []
    start_s = clock.now()  # taken again once connected: the session's states are timed from it
    memlog = MemoryPassLog(clock)
    try:
        pen = PenController.connect(pen_side.url, calibration=calibration, zones=zones,
                                    lease_ms=lease_ms, telemetry_hz=telemetry_hz, clock=clock,
                                    footswitch=footswitch)
        try:
            start_s, collecting = clock.now(), [True]
            from_state: list[str | None] = [None]  # until a change leaves it: not the session's

            def on_state(old: Any, new: Any, _why: str) -> None:
                if not collecting[0]:  # the session's changes only, as recorded
                    return
                if from_state[0] is not None:  # on its way to the recorded start state
                    if old.value != from_state[0]:
                        return
                    from_state[0] = None
                states.append((old.value, new.value, clock.now() - start_s))

            pen.add_state_listener(on_state)

            bind_actions(pen, pen_side, clock)  # what each recorded input does to it
            collecting[0] = False  # a clear before the part is not one of its changes
            _replay_clears(pen, pen_side, part, report)
            from_state[0] = start[0] if start is not None else None
            collecting[0] = True  # (state listeners run before clear_faults returns)
            if opened_at is not None:  # the session opens now, at the time it did live
                pen.replay_at(opened_at)
            pen_side.begin_session()
            if start is not None:  # the controller as the live one was when recording began
                pen_side.differ(reach_start(pen, pen_side, start, CLEAR_WAIT_S))
            if pen_side.difference is None:
                session = TreatmentSession(pen, memlog, profile,  # type: ignore[arg-type]
                                           "replay", technician)
                opening = opened_on(pen, meta)  # interrupted as it was opened: told so
                if opening is not None:
                    session.keep_opening_counts(opening)
                _play_session(pen, pen_side, session, plan, part, report)
            collecting[0] = False
            pen_side.finish()
            if pen_side.inputs is not None:  # one left no trace of its own: never skipped
                pen_side.differ(pen_side.inputs.held_left())
        finally:
            pen.close()
    except SmpError as exc:
        if pen_side.difference is None:
            raise RecordingError(f"the replay of {part.label} could not connect to the "
                                 f"recorded pen: {exc}. The recording's handshake is damaged "
                                 "or missing") from None
    finally:
        driver.close()
        pen_side.close()
    report.matched += pen_side.matched
    if pen_side.difference is not None:
        return pen_side.difference
    unrecorded_from, full = None, None  # state changes past it, passes from `full`: unknown
    if pen_side.cut_at_s is not None:
        end_s = pen_side.replay_time(pen_side.cut_at_s)
        unrecorded_from = end_s - start_s - max(EARLY_TOLERANCE_S, pen_side.timing_tolerance_s)
        full = memlog.ended_by(end_s)
    return (first_state_difference(rec, states, unrecorded_from)
            or first_pass_difference(part.passes, memlog.passes(), telemetry_hz, full))


def _play_session(pen: Any, pen_side: ReplayPen, session: Any, plan: list[tuple[int, Any]],
                  part: Part, report: ReplayReport) -> None:
    """Play the part's plan with the replayed session, then close it, as its run did."""
    from smpdevice.link.clock import timebase_for

    session.remaining = plan  # checks after the same inputs, then each pass's calibration
    session.between_point = on_each_pass_s_own(pen, part.passes, lambda: len(
        session.passlog.passes()), pen_side.await_between, report.notes)
    timebase = timebase_for(pen.clock)
    # The session's decisions happen at the virtual moment it makes them however long a
    # loaded machine holds this thread between two waits: else the controller's own timers
    # (a pass's planned end) could fire first.
    with timebase.participant():
        try:
            session.play(should_stop=pen_side.should_stop)
        except SmpError as exc:
            report.notes.append(f"{part.label}: the replayed session stopped: {exc}")
        _await_judged_loss(pen, pen_side, part.recording)
        # The live session closed after what the pen said meanwhile (a lease that lapsed
        # while a loaded host was slow, say): let the recorded pen catch up.
        cond = timebase.condition()
        with cond:
            cond.wait_for(pen_side.caught_up, pen_side.pending_for_s() + 1.0)
        try:
            session.close()
        except SmpError as exc:
            report.notes.append(f"{part.label}: closing the replayed session: {exc}")
        inputs = pen_side.inputs  # an E-stop held while the link was down leaves no frame
        if inputs is not None and inputs.held_left() is not None:  # to wait for: its point
            with cond:  # may come as (or after) the session closed; its press, once offline
                cond.wait_for(lambda: pen_side.caught_up() and inputs.held_left() is None,
                              max(inputs.held_due_s(pen_side.replay_time)
                                  - pen.clock.now(), 0.0) + CLEAR_WAIT_S)


def _replay_clears(pen: Any, pen_side: ReplayPen, part: Part, report: ReplayReport) -> None:
    """The technician's clear on this connection before the part (a resume after a lost link:
    the new connection found the pen latched on its lapsed lease) is an input: made again
    here, as recorded, so the part starts where its run did (review6 R04). So is an E-stop
    pressed there, before the recording's start (review 20: the part starts latched)."""
    from firmware_protocol import MsgType
    from smpdevice.control import State

    latched = (State.FAULT, State.ESTOP)
    while pen_side.preamble_next() in (MsgType.CLEAR_FAULTS, MsgType.ESTOP) \
            and pen_side.difference is None:
        try:
            if pen_side.preamble_next() == MsgType.ESTOP:
                pen.estop()
                continue
            pen.wait_for_state(*latched, timeout_s=CLEAR_WAIT_S)
            pen.clear_faults()
        except SmpError as exc:
            report.notes.append(f"{part.label}: the request before it could not be replayed: "
                                f"{exc}")
            return


def _await_judged_loss(pen: Any, pen_side: ReplayPen, rec: Recording) -> None:
    """A link loss the live controller judged from the pen's silence came while its session
    was closing: give the replayed controller until then (and the timing tolerance) to judge
    the same silence by itself; if it does not, the state comparison names it."""
    from smpdevice.control import State

    judged = [t for t, value in _inputs_of(rec)
              if value.get("kind") == "link_lost" and value.get("cause") == "silence"]
    if not judged or pen.state is State.DISCONNECTED:
        return
    wait_s = pen_side.replay_time(judged[0]) - pen.clock.now() + pen_side.timing_tolerance_s
    with contextlib.suppress(SmpError):
        pen.wait_for_state(State.DISCONNECTED, timeout_s=max(wait_s, 0.001))


def _last_word_before_silence(rec: Recording) -> float | None:
    """The recorded time of the pen's last bytes before a loss judged from its silence."""
    judged = [t for t, value in _inputs_of(rec)
              if value.get("kind") == "link_lost" and value.get("cause") == "silence"]
    if not judged:
        return None
    said = [entry.t_s for entry in rec.channel("/pen") if entry.t_s <= judged[0]]
    return max(said) if said else None


def _inputs_of(rec: Recording) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for entry in rec.channel("/input"):
        with contextlib.suppress(ValueError):
            value = json.loads(entry.data)
            if isinstance(value, dict):
                out.append((entry.t_s, value))
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)
