"""`smp replay SESSION --into-sim`: the recorded host commands played into the simulator.

Per part (a resumed session has one per run, `smpdevice.replay.parts`): the part's handshake
(its preamble up to SET_TELEMETRY_RATE) when it ran on a new connection, then every host
frame of the part (lease renewals and retransmissions included: the pen's lease depends on
them) at its recorded time on the simulator's virtual clock. Each reply of the simulator is
compared with the reply the pen sent to the same frame (decoded; sequence numbers are the
same, as the host's frames are sent as recorded). Then the pen's EVENTs of the part (fault
latched, E-stop, lease expiry: what the pen decided on its own) are compared with the
simulator's, by code, state and faults. Telemetry is not compared: it is physics, not a
decision. The simulator is the one the recording names (`sim_seed`), seed 0 for a real pen.

Between two parts the real pen got commands the recording does not hold (`smp clear`, a
reconnection). The simulator is carried over (`SimulatedPen`: its faults, clock, counters,
temperature), as the pen stayed switched on, and brought to the part's start from what the
recording does say (`_bring_to_start`):
- its clock: idle until the pen time the part's first reports show;
- a pen whose clock began again (its reports' uptime went back) was restarted: a fresh
  simulator boots for that part (a per-process `pensim://`, or a power cycle);
- its state: the part began on an idle pen (its `/meta` `state`); a simulator left in FAULT or
  ESTOP gets CLEAR_FAULTS, the one command that makes a latched pen idle, not compared; one
  left RUNNING or ARMED (the recording ended on a lost link, and the reconnect's handshake
  found the needle running and stopped it, or the run stopped it past its recording's end)
  gets NEEDLE_STOP and DISARM, not compared (review6 R05); a simulator that still is not idle
  then (the fault's cause is still there, a stop refused) is a difference;
- a new connection (another `connection` in `/meta`, or for older recordings another
  preamble) replays its handshake, compared; the same connection does not handshake again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from firmware_protocol import Frame, MsgType
from firmware_protocol.codes import FirmwareState
from firmware_protocol.messages import ClearFaults, Disarm, NeedleStop
from smpdevice.records.frames import Recording, RecordingError
from smpdevice.replay.parts import Part
from smpdevice.replay.pen import Difference, same_message
from smpdevice.replay.runner import ReplayReport, load
from smpdevice.replay.script import describe, merged_frames, preamble_entries, session_entries
from smpdevice.replay.sim_pen import MAX_IDLE_S, SimulatedPen, recorded_simulator_options
from smpdevice.replay.sim_session import booting as _booting
from smpdevice.replay.sim_session import conversation as _conversation
from smpdevice.replay.sim_session import fault_names as _faults
from smpdevice.replay.sim_session import named as _named
from smpdevice.replay.sim_session import play_session as _play_session

__all__ = ["PartResult", "recorded_simulator_options", "replay_into_sim"]

HANDSHAKE_LEAD_MS = 500.0  # a new connection's handshake: this long before its session began
UPTIME_FRAMES = 500  # pen frames looked at for the recorded pen's clock


@dataclass
class PartResult:
    """How one part went: its label, frames, how the simulator got to its start."""

    label: str
    host_frames: int = 0  # the part's session frames replayed (its handshake's not counted)
    matched: int = 0
    difference: Difference | None = None
    started: list[str] = field(default_factory=list)  # how the simulator was brought there

    @property
    def match(self) -> bool:
        return self.difference is None


def _seed(rec: Recording, notes: list[str]) -> int | None:
    recorded_simulator_options(rec.meta.get("port"))  # RecordingError: a port no pen ran on
    seed = rec.meta.get("sim_seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    if seed is not None:  # never written so: seed 0 standing in would hide the alteration
        raise RecordingError(f"{rec.path.name}: its metadata names the simulator seed "
                             f"{seed!r}, no whole number: the recording was altered")
    if rec.meta.get("simulated") is True:  # `smp sim` over TCP or a PTY (review9b R09)
        note = ("recorded on a simulator in another process (`smp sim` over TCP or a PTY; its "
                "IDENTIFY says SIMULATED): the recording does not know its seed, model options "
                "or fault spec, so the simulator seed 0 stands in for it, without faults unless "
                "given (--faults SPEC, the spec it ran with); its IDENTIFY (serial, limits) is "
                "not compared")
    else:
        note = ("recorded on a real pen: the simulator (seed 0) stands in for it; its IDENTIFY "
                "(serial, limits) is not compared with the pen's")
    if note not in notes:
        notes.append(note)
    return None


def replay_into_sim(passlog: Any, session_id: str, faults: str | None = None) -> ReplayReport:
    """Replay the recorded host frames into a simulator built as the recorded one (seed,
    model options, fault spec; `faults` overrides the spec) and compare its replies, part by
    part; the report's `part_results` says how each went, up to the first that differs."""
    loaded = load(passlog, session_id)
    report = ReplayReport(loaded.session_id, loaded.recording.path, None, notes=loaded.notes)
    report.parts = len(loaded.parts)
    pen: SimulatedPen | None = None
    previous: Part | None = None
    try:
        for part in loaded.parts:
            seed = _seed(part.recording, report.notes)
            result = PartResult(part.label)
            pen = _bring_to_start(pen, previous, part, seed, faults, result)
            if result.difference is None:
                _play_session(pen, part.recording, seed, result)
            report.part_results.append(result)
            if report.parts == 1:  # no per-part line is printed: say it in a note
                report.notes.extend(result.started)
            report.decisions += result.host_frames
            report.matched += result.matched
            if result.difference is not None:
                report.difference = (dataclasses.replace(result.difference, part=part.label)
                                     if report.parts > 1 else result.difference)
                break
            previous = part
    finally:
        if pen is not None:
            pen.close()
    return report


def _bring_to_start(pen: SimulatedPen | None, previous: Part | None, part: Part,
                    seed: int | None, faults: str | None, result: PartResult) -> SimulatedPen:
    """The simulator at the point the part's session began (see the module's docstring)."""
    rec = part.recording
    options = recorded_simulator_options(rec.meta.get("port"))
    start_ms = _recorded_uptime_ms(rec)
    restarted = previous is not None and _restarted(previous.recording, rec)
    other_pen = pen is not None and (pen.seed, pen.options) != (seed or 0, options)
    if pen is None or restarted or other_pen:
        if pen is not None:
            pen.close()
        pen = SimulatedPen(seed or 0, options, faults)
        if previous is not None:
            result.started.append("a fresh simulator: " + (
                "the recorded pen's clock began again (it was restarted)" if restarted
                else "the part names another simulated pen"))
        new_connection = True
    else:
        new_connection = _new_connection(previous.recording, rec)  # type: ignore[union-attr]
        lead_ms = HANDSHAKE_LEAD_MS if new_connection else 0.0
        idle_s = max(0.0, (start_ms - lead_ms - pen.uptime_ms) / 1000.0)
        _note_skip(result, pen.idle_until_uptime(start_ms - lead_ms))
        result.started.append(f"the simulator carried over, idle {idle_s:.3f} s")
        _make_idle(pen, rec, result)
        if result.difference is not None:
            return pen
        if new_connection:
            pen.reconnect()
    if new_connection:
        if previous is not None:
            result.started.append("a new connection: its handshake replayed")
        _play_handshake(pen, part.preamble, seed, result)
    _note_skip(result, pen.idle_until_uptime(start_ms))
    return pen


def _note_skip(result: PartResult, skipped_s: float) -> None:
    if skipped_s > 0:
        result.started.append(f"{skipped_s:.0f} s of the pen's idle time not simulated (past "
                              f"{MAX_IDLE_S:.0f} s): a fault scheduled in it falls that much "
                              "later")


def _make_idle(pen: SimulatedPen, rec: Recording, result: PartResult) -> None:
    """A part begins on an idle pen: a latched simulator gets CLEAR_FAULTS, as the real pen
    got (the only command that unlatches); a running or armed one is stopped and disarmed, as
    the real pen was (the reconnect's handshake, or the run past its recording's end). Then
    it must be idle as the pen was. What made the pen idle is not in the part's recording:
    not compared; the part's own frames are, from its first."""
    if rec.meta.get("state") != "idle":
        result.started.append(f"its start state {rec.meta.get('state')!r} not checked")
        return
    state, faults = pen.firmware_state()
    if state in (FirmwareState.RUNNING, FirmwareState.ARMED):
        first = _first_host_seq(rec)
        stops = [NeedleStop(), Disarm()] if state is FirmwareState.RUNNING else [Disarm()]
        for back, message in zip(range(len(stops), 0, -1), stops, strict=True):
            pen.exchange(Frame((first - 1 - back) % 255 + 1, message))  # seqs just before
        names = " and ".join(MsgType(m.TYPE).name for m in stops)
        result.started.append(f"{names} sent (the pen was left {state.name}; the stop is not "
                              "in the part's recording)")
        pen.idle_until_uptime(pen.uptime_ms + 1)  # its events, before the part
        pen.take()
        state, faults = pen.firmware_state()
        if state is not FirmwareState.IDLE:
            result.difference = Difference(
                "pen at the part's start", 0, 0.0, "IDLE with no fault (the part began on an "
                "idle pen)", f"{state.name}{_faults(faults)} after the stop")
    elif state in (FirmwareState.FAULT, FirmwareState.ESTOP):
        first = _first_host_seq(rec)
        seq = (first - 2) % 255 + 1  # the seq just before the part's first (1..255)
        reply = pen.exchange(Frame(seq, ClearFaults()))
        result.started.append(f"CLEAR_FAULTS sent (the pen left {state.name}"
                              f"{_faults(faults)}; the clear is not in the recording)")
        pen.idle_until_uptime(pen.uptime_ms + 1)  # its CLEARED event, before the part
        pen.take()
        state, faults = pen.firmware_state()
        if state is not FirmwareState.IDLE:
            result.difference = Difference(
                "pen at the part's start", 0, 0.0, "IDLE with no fault (the part began on an "
                "idle pen)", f"{state.name}{_faults(faults)} after CLEAR_FAULTS, answered "
                f"{_named(reply.message if reply else None)}")
    elif state is not FirmwareState.IDLE:
        result.difference = Difference("pen at the part's start", 0, 0.0, "IDLE with no fault "
                                       "(the part began on an idle pen)",
                                       f"{state.name}{_faults(faults)}")


def _first_host_seq(rec: Recording) -> int:
    for _, who, frame in merged_frames(session_entries(rec)):
        if who == "host" and frame.seq:
            return int(frame.seq)
    return 1


def _new_connection(before: Recording, after: Recording) -> bool:
    """Whether `after` ran on another connection than `before`: their `/meta` `connection`
    ids, or (older recordings) their preambles (a connection's first bytes, kept once)."""
    a, b = before.meta.get("connection"), after.meta.get("connection")
    if isinstance(a, str) and isinstance(b, str):
        return a != b
    # Older recordings: a connection's preamble grew between its sessions (the bytes that
    # crossed it untapped), so the same connection's is the earlier one and more.
    old = [(who, data) for _, who, data in preamble_entries(before)]
    new = [(who, data) for _, who, data in preamble_entries(after)]
    return not old or new[:len(old)] != old


def _uptimes(entries: list[tuple[float, str, bytes]]) -> list[tuple[float, int]]:
    out = []
    for t_s, who, frame in merged_frames(entries):
        uptime = getattr(frame.message, "uptime_ms", None)
        if who == "pen" and isinstance(uptime, int):
            out.append((t_s, uptime))
    return out


def _restarted(before: Recording, after: Recording) -> bool:
    """Whether the pen's clock began again between two parts (restarted, or another pen)."""
    last = [u for _, u in _uptimes(session_entries(before))]
    first = [u for _, u in _uptimes(session_entries(after))]  # its preamble may be older
    return bool(last and first) and min(first) < max(last)


def _play_handshake(pen: SimulatedPen, preamble: list[tuple[float, str, bytes]],
                    seed: int | None, result: PartResult) -> None:
    for i, (_, frame, expected, _) in enumerate(
            _conversation(merged_frames(preamble), handshake_only=True)):
        pen.sim.advance(0.002)
        got = pen.exchange(frame)
        if expected is None or _booting(expected) or (
                seed is None and expected.message.TYPE == MsgType.IDENTIFY):
            result.matched += 1  # no reply reached the host, a boot's timing, another pen's id
            continue
        if got is None or not same_message(expected.message, got.message):
            result.difference = Difference(
                "handshake reply", i, 0.0,
                f"{describe(expected.message)} to {describe(frame.message)}",
                describe(got.message if got else None))
            return
        result.matched += 1  # a handshake's frames count as matched, not as host frames


def _recorded_uptime_ms(rec: Recording) -> float:
    """The recorded pen's uptime when the part's session began; 0 when no frame says.

    Each pen frame's uptime was stamped before the host read it (by the link's delay, long
    on a loaded host), so each gives a lower bound: the highest of the first frames' is the
    estimate. Taking the first frame alone put a fault scheduled at a pen time (`jam@T`)
    late by that delay, after the recording's end."""
    entries = session_entries(rec)
    hosts = [t_s for t_s, who, _ in merged_frames(entries) if who == "host"]
    t0 = hosts[0] if hosts else 0.0
    best: float | None = None
    for t_s, uptime in _uptimes(entries)[:UPTIME_FRAMES]:
        estimate = uptime - (t_s - t0) * 1000.0
        best = estimate if best is None else max(best, estimate)
    return best if best is not None else 0.0
