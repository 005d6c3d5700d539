"""`smp replay SESSION --into-sim`: the recorded host commands played into the simulator.

The handshake (the preamble up to SET_TELEMETRY_RATE), then every host frame of the session
(lease renewals and retransmissions included: the pen's lease depends on them) at its
recorded time on the simulator's virtual clock. Each reply of the simulator is compared
with the reply the pen sent to the same frame (decoded; sequence numbers are the same, as the
host's frames are sent as recorded). Then the pen's EVENTs of the session (fault latched,
E-stop, lease expiry: what the pen decided on its own) are compared with the simulator's, by
code, state and faults. Telemetry is not compared: it is physics, not a decision. The
simulator is the one the recording names (`sim_seed`), seed 0 for a real pen.
"""

from __future__ import annotations

from typing import Any

from firmware_protocol import Frame, MsgType, StreamDecoder, encode
from firmware_protocol.codes import NackReason
from smpdevice.records.frames import RecordingError
from smpdevice.replay.pen import Difference, same_message
from smpdevice.replay.runner import ReplayReport, load
from smpdevice.replay.script import describe, merged_frames, preamble_entries, session_entries

BOOT_S = 0.06  # the simulated pen boots in this much virtual time
CHUNK_S = 0.5  # read the simulator's output at least this often (its buffer is 64 KiB)


def _conversation(merged: list[tuple[float, str, Frame]], handshake_only: bool
                  ) -> list[tuple[float, Frame, Frame | None]]:
    """(time, host frame, the pen's first reply to it or None), in order; `handshake_only`:
    up to the SET_TELEMETRY_RATE the pen accepted (the rest of a preamble is calibration)."""
    out: list[tuple[float, Frame, Frame | None]] = []
    waiting: dict[int, int] = {}  # seq -> index in out still without a reply
    for t_s, who, frame in merged:
        if who == "host":
            waiting[frame.seq] = len(out)
            out.append((t_s, frame, None))
        elif frame.seq and frame.seq in waiting:
            i = waiting.pop(frame.seq)
            out[i] = (out[i][0], out[i][1], frame)
    if handshake_only:
        for i, (_, frame, reply) in enumerate(out):
            if frame.message.TYPE == MsgType.SET_TELEMETRY_RATE and reply is not None \
                    and reply.message.TYPE == MsgType.ACK:
                return out[:i + 1]
    return out


def _booting(reply: Frame) -> bool:
    """A NACK BOOTING says when the pen was switched on, not what it decides."""
    return reply.message.TYPE == MsgType.NACK and getattr(
        reply.message, "reason", None) == NackReason.BOOTING


def recorded_simulator_options(port_url: Any) -> dict[str, str]:
    """The options of the `pensim://?...` port the session ran on (faults, lease, telemetry);
    empty for a real pen or a named simulator (its options are not in its URL)."""
    import urllib.parse

    if not isinstance(port_url, str) or not port_url.startswith("pensim://"):
        return {}
    query = urllib.parse.urlsplit(port_url).query
    options = {k: v[-1] for k, v in urllib.parse.parse_qs(query, True).items()}
    return {k: options[k] for k in ("faults", "lease", "telemetry") if k in options}


def _simulator(seed: int, options: dict[str, str], faults: str | None, clock: Any) -> Any:
    """The simulated pen a replay talks to: the recorded model options and fault spec, or
    `faults` (from `smp replay --faults`) instead of the recorded spec."""
    from simulators import PenSimulator
    from simulators.faults import parse_fault_spec
    from simulators.pen_model import PenModel

    spec = faults if faults is not None else options.get("faults")
    which = "--faults" if faults is not None else "the recorded port's faults"
    try:
        plan = parse_fault_spec(spec)
    except ValueError as exc:
        raise RecordingError(f"{which} = {spec!r} is not a fault spec ({exc}); see "
                             "docs/simulator.md for the syntax, e.g. --faults jam@1.5") from None
    if "lease" not in options and "telemetry" not in options:
        return PenSimulator(seed=seed, clock=clock, link_faults=plan)
    model = PenModel(seed=seed)  # the recorded port's model options
    try:
        if "lease" in options:
            model.lease_max_ms = int(options["lease"])
        if "telemetry" in options:
            model.telemetry_default_hz = int(options["telemetry"])
        return PenSimulator(model=model, clock=clock, link_faults=plan)  # checks their ranges
    except ValueError as exc:
        raise RecordingError(f"the recorded port's options are invalid ({exc})") from None


def replay_into_sim(passlog: Any, session_id: str, faults: str | None = None) -> ReplayReport:
    """Replay the recorded host frames into a simulator built as the recorded one (seed,
    model options, fault spec; `faults` overrides the spec) and compare its replies."""
    from simulators.clock import VirtualClock

    loaded = load(passlog, session_id)
    if len(loaded.parts) > 1:
        raise RecordingError(
            f"session {loaded.session_id} was resumed ({len(loaded.parts)} recorded parts): "
            "--into-sim plays the host's frames into a simulator that starts from its boot, "
            "as the pen of part 1 did; a later part starts on a pen in mid-life (its fault "
            "cleared, its counters and clock run on, by commands outside the recording), "
            "which no fresh simulator reproduces. Replay it into a controller instead: "
            f"smp replay {loaded.session_id}")
    rec, meta = loaded.recording, loaded.recording.meta
    options = recorded_simulator_options(meta.get("port"))
    seed = meta.get("sim_seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        loaded.notes.append("recorded on a real pen: the simulator (seed 0) stands in for it; "
                            "its IDENTIFY (serial, limits) is not compared with the pen's")
        seed = None
    handshake = _conversation(merged_frames(preamble_entries(rec)), handshake_only=True)
    session = _conversation(merged_frames(session_entries(rec)), handshake_only=False)
    report = ReplayReport(loaded.session_id, rec.path, None, decisions=len(session),
                          notes=loaded.notes)
    clock = VirtualClock()
    with _simulator(seed or 0, options, faults, clock) as sim:
        port = sim.open_port()
        decoder = StreamDecoder()
        sim.advance(BOOT_S)
        events: list[tuple[float, Any]] = []
        phase = ["handshake"]

        def take() -> list[Frame]:
            data = port.read(port.in_waiting, 0) if port.in_waiting else b""
            out = decoder.feed(data)
            if phase[0] == "session":
                events.extend((clock.now() - session_start[0], f.message) for f in out
                              if f.seq == 0 and f.message.TYPE == MsgType.EVENT)
            return out

        session_start = [0.0]
        take()  # the boot

        def advance_to(due_s: float) -> None:
            while clock.now() < due_s:  # in steps: the port's buffer is finite, like a tty's
                sim.advance(min(CHUNK_S, due_s - clock.now()))
                take()

        def exchange(frame: Frame) -> Frame | None:
            port.write(encode(frame.message, frame.seq))
            replies = [f for f in take() if f.seq == frame.seq]
            return replies[0] if replies else None

        t0 = session[0][0] if session else 0.0
        for part, conversation in (("handshake", handshake), ("session", session)):
            start_s = clock.now()
            if part == "session":
                # The recorded pen's clock (uptime) at the session's start: a fault scheduled
                # at a pen time (jam@T) then falls at the same point of the session.
                lag_ms = _recorded_uptime_ms(rec, t0) - sim.firmware.uptime_ms
                if lag_ms > 0:
                    advance_to(clock.now() + lag_ms / 1000.0)
                start_s = clock.now()
                take()
                phase[0], session_start[0] = "session", start_s
            for i, (t_s, frame, expected) in enumerate(conversation):
                if part == "session":
                    due_s = start_s + (t_s - t0)
                    advance_to(due_s)
                else:
                    sim.advance(0.002)
                got = exchange(frame)
                report.matched += 1
                if expected is None or _booting(expected) or (
                        seed is None and expected.message.TYPE == MsgType.IDENTIFY):
                    continue  # no reply reached the host, a boot's timing, another pen's id
                if got is None or not same_message(expected.message, got.message):
                    report.matched -= 1
                    report.difference = Difference(
                        f"{part} reply", i, t_s - t0 if part == "session" else 0.0,
                        f"{describe(expected.message)} to {describe(frame.message)}",
                        describe(got.message if got else None))
                    port.close()
                    return report
        entries = session_entries(rec)
        end_s = session_start[0] + (entries[-1][0] - t0 if entries else 0.0)
        advance_to(end_s)
        port.close()
    expected_events = [(t_s - t0, f.message) for t_s, who, f in merged_frames(entries)
                       if who == "pen" and f.seq == 0 and f.message.TYPE == MsgType.EVENT]
    report.difference = _first_event_difference(expected_events, events)
    return report


UPTIME_FRAMES = 500  # pen frames looked at for the recorded pen's clock


def _recorded_uptime_ms(rec: Any, t0: float) -> float:
    """The recorded pen's uptime when the session began (at `t0`); 0 when no frame says.

    Each pen frame's uptime was stamped before the host read it (by the link's delay, long
    on a loaded host), so each gives a lower bound: the highest of the first frames' is the
    estimate. Taking the first frame alone put a fault scheduled at a pen time (`jam@T`)
    late by that delay, after the recording's end."""
    best: float | None = None
    seen = 0
    for t_s, who, frame in merged_frames(session_entries(rec)):
        uptime = getattr(frame.message, "uptime_ms", None)
        if who != "pen" or not isinstance(uptime, int):
            continue
        estimate = uptime - (t_s - t0) * 1000.0
        best = estimate if best is None else max(best, estimate)
        seen += 1
        if seen >= UPTIME_FRAMES:
            break
    return best if best is not None else 0.0


def _event_key(message: Any) -> tuple[int, int, int]:
    return (message.event, message.state, message.faults)


def _first_event_difference(expected: list[tuple[float, Any]], got: list[tuple[float, Any]]
                            ) -> Difference | None:
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e is None or g is None or _event_key(e[1]) != _event_key(g[1]):
            return Difference("pen event", i, (e or g)[0],  # type: ignore[index]
                              _describe_event(e[1]) if e else "no more events",
                              _describe_event(g[1]) if g else "no such event from the simulator")
    return None


def _describe_event(message: Any) -> str:
    from firmware_protocol.codes import EventCode, Fault, FirmwareState

    try:
        faults = Fault(message.faults)
        return (f"Event {EventCode(message.event).name} (state "
                f"{FirmwareState(message.state).name}, faults {faults.names or 'none'})")
    except ValueError:
        return describe(message)
