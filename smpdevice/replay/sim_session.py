"""One part's session frames played into the simulator, for `smp replay --into-sim`
(`smpdevice.replay.into_sim`): each host frame at its recorded time, the simulator's reply
compared with the recorded pen's, then the pen's EVENTs.

A reply is judged when it came: at once, or (a reply the recorded pen sent late, under
`delay_type`) once the simulator's clock reaches the time the recorded one was read, before
the next host frame due after it. A port the simulator lost (`disconnect@T`: the recorded
pen's too) ends the part's frames there: what was sent before it, and the events up to it,
are compared; recorded host frames after the loss (a port that failed on the live run later
or never) are a difference, not a file error.

A lost link the controller took back (`link_lost` then `reconnect` on `/input`, session 20) is
played as it came: at the loss the simulator's port is closed (what the pen sent meanwhile was
lost with the cable, live), at the reconnect a new port is opened and the new connection's
recorded handshake (`/reconnect/*`) is played on it, each reply compared; the session's frames
then go on on it. A reconnect whose port did not open live (no handshake) opens none.
"""

from __future__ import annotations

import contextlib
from typing import Any

from serial import SerialException

from firmware_protocol import Frame, MsgType
from firmware_protocol.codes import Fault, FirmwareState, NackReason
from smpdevice.records.frames import Recording
from smpdevice.replay.pen import Difference, same_message
from smpdevice.replay.script import build_script, describe, merged_frames, session_entries
from smpdevice.replay.sim_pen import SimulatedPen

# (time, host frame, the pen's first reply to it or None, that reply's recorded time or None)
Exchange = tuple[float, Frame, Frame | None, float | None]


def conversation(merged: list[tuple[float, str, Frame]], handshake_only: bool) -> list[Exchange]:
    """Each host frame with the pen's first reply to it, in order; `handshake_only`: up to
    the SET_TELEMETRY_RATE the pen accepted (the rest of a preamble is calibration)."""
    out: list[Exchange] = []
    waiting: dict[int, int] = {}  # seq -> index in out still without a reply
    for t_s, who, frame in merged:
        if who == "host":
            waiting[frame.seq] = len(out)
            out.append((t_s, frame, None, None))
        elif frame.seq and frame.seq in waiting:
            i = waiting.pop(frame.seq)
            out[i] = (out[i][0], out[i][1], frame, t_s)
    if handshake_only:
        for i, (_, frame, reply, _) in enumerate(out):
            if frame.message.TYPE == MsgType.SET_TELEMETRY_RATE and reply is not None \
                    and reply.message.TYPE == MsgType.ACK:
                return out[:i + 1]
    return out


def booting(reply: Frame) -> bool:
    """A NACK BOOTING says when the pen was switched on, not what it decides."""
    return reply.message.TYPE == MsgType.NACK and getattr(
        reply.message, "reason", None) == NackReason.BOOTING


def named(message: Any) -> str:
    """`describe`, with a NACK's reason by name (the code alone says little)."""
    text = describe(message)
    if message is not None and message.TYPE == MsgType.NACK:
        with contextlib.suppress(ValueError):
            text += f" ({NackReason(message.reason).name})"
    return text


def fault_names(faults: Any) -> str:
    names = Fault(int(faults)).names if faults else []
    return f", faults {', '.join(names)}" if names else ""


class _Pending:
    """Replies the recorded pen sent after a later host frame (late), judged when due."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int, Frame, Frame]] = []  # (reply t, index, sent, reply)

    def judge(self, pen: SimulatedPen, now_s: float | None) -> Difference | None:
        """Judge those due by recorded time `now_s` (None: all); the first that differs."""
        due = [p for p in self.items if now_s is None or p[0] <= now_s]
        self.items = [p for p in self.items if p not in due]
        for _, i, frame, expected in due:
            got = pen.replies.get(frame.seq)
            if got is None or not same_message(expected.message, got.message):
                return Difference("session reply", i, 0.0,  # its time: _timed
                                  f"{named(expected.message)} to {describe(frame.message)}",
                                  named(got.message if got else None))
        return None


def play_session(pen: SimulatedPen, rec: Recording, seed: int | None, result: Any) -> None:
    """The part's host frames at their recorded times; replies, then events, compared
    (`result`: the part's `PartResult`, its counts and difference set here)."""
    entries = session_entries(rec)
    session = conversation(merged_frames(entries), handshake_only=False)
    result.host_frames = len(session)
    t0 = session[0][0] if session else 0.0
    pen.take()
    pen.collect_events(True)
    start_s = pen.clock.now()
    pending = _Pending()
    end_s = entries[-1][0] if entries else t0
    links = link_points(entries)
    handshake_events: list[tuple[float, Any]] = []

    def to_links(until_s: float) -> Difference | None:  # the link's losses and reconnects
        while links and links[0][0] <= until_s:
            at_s, handshake = links.pop(0)
            pen.advance_to(start_s + (at_s - t0))
            difference = pending.judge(pen, at_s)
            if difference is None and handshake is None:
                pen.unplug()
            elif difference is None and handshake:
                pen.reconnect()
                difference = play_reconnect(pen, handshake, seed, result)
                handshake_events.extend((at_s - t0, f.message) for _, who, f in merged_frames(
                    list(handshake)) if who == "pen" and f.seq == 0
                    and f.message.TYPE == MsgType.EVENT)
            if difference is not None:
                return _timed(difference, at_s - t0)
        return None

    try:
        for i, (t_s, frame, expected, reply_s) in enumerate(session):
            result.difference = to_links(t_s)
            if result.difference is not None:
                return
            pen.advance_to(start_s + (t_s - t0))
            result.difference = _timed(pending.judge(pen, t_s), t_s - t0)
            if result.difference is not None:
                return
            got = pen.exchange(frame)
            if expected is None or booting(expected) or (
                    seed is None and expected.message.TYPE == MsgType.IDENTIFY):
                result.matched += 1
                continue
            if got is None and reply_s is not None and reply_s > t_s:
                pending.items.append((reply_s, i, frame, expected))  # the recorded one was late
                result.matched += 1
                continue
            if got is None or not same_message(expected.message, got.message):
                result.difference = Difference(
                    "session reply", i, t_s - t0,
                    f"{named(expected.message)} to {describe(frame.message)}",
                    named(got.message if got else None))
                return
            result.matched += 1
        result.difference = to_links(end_s)
        if result.difference is not None:
            return
        pen.advance_to(start_s + (end_s - t0))
        result.difference = _timed(pending.judge(pen, None), end_s - t0)
    except (SerialException, ConnectionError) as exc:  # the port lost (`disconnect@T`)
        lost_s = pen.clock.now() - start_s
        result.started.append(f"the simulator's port was lost at t={lost_s:.3f} s ({exc}): "
                              "compared up to there")
        later = [(i, item) for i, item in enumerate(session) if item[0] - t0 > lost_s + 0.05]
        if later:
            i, (t_s, frame, _, _) = later[0]
            result.difference = Difference(
                "session reply", i, t_s - t0, f"the port open for {describe(frame.message)} "
                "(the recorded host still sent it)", f"the simulator's port lost at "
                f"t={lost_s:.3f} s")
            return
        end_s = t0 + lost_s
    finally:
        pen.collect_events(False)
    if result.difference is not None:
        return
    expected_events = sorted([(t_s - t0, f.message) for t_s, who, f in merged_frames(entries)
                              if who == "pen" and f.seq == 0
                              and f.message.TYPE == MsgType.EVENT and t_s <= end_s]
                             + handshake_events, key=lambda item: item[0])
    result.difference = first_event_difference(expected_events, pen.events)


def link_points(entries: list[tuple[float, str, bytes]]
                ) -> list[tuple[float, tuple[tuple[float, str, bytes], ...] | None]]:
    """The recorded link losses that a reconnect took back, and the reconnects, in order:
    (time, None) for a loss, (time, its handshake) for a reconnect. A loss no reconnect
    followed is left as before (the part's frames end there)."""
    points: list[tuple[float, tuple[tuple[float, str, bytes], ...] | None]] = []
    for item in build_script(entries).inputs:
        if item.kind == "link_lost":
            points.append((item.t_s, None))
        elif item.kind == "reconnect":
            points.append((item.t_s, item.handshake))
    while points and points[-1][1] is None:
        points.pop()
    return points


def play_reconnect(pen: SimulatedPen, handshake: tuple[tuple[float, str, bytes], ...],
                   seed: int | None, result: Any) -> Difference | None:
    """A new connection's recorded handshake on the simulator's new port, each reply
    compared (a boot's NACK, another pen's IDENTIFY: not); its frames count as matched."""
    for i, (_, frame, expected, _) in enumerate(conversation(merged_frames(list(handshake)),
                                                             handshake_only=False)):
        pen.sim.advance(0.002)
        got = pen.exchange(frame)
        if expected is None or booting(expected) or (
                seed is None and expected.message.TYPE == MsgType.IDENTIFY):
            result.matched += 1
            continue
        if got is None or not same_message(expected.message, got.message):
            return Difference("reconnect reply", i, 0.0,
                              f"{named(expected.message)} to {describe(frame.message)}",
                              named(got.message if got else None))
        result.matched += 1
    return None


def _timed(difference: Difference | None, t_s: float) -> Difference | None:
    if difference is None:
        return None
    return Difference(difference.what, difference.index, t_s, difference.expected,
                      difference.got, difference.part)


def _event_key(message: Any) -> tuple[int, int, int]:
    return (message.event, message.state, message.faults)


def first_event_difference(expected: list[tuple[float, Any]], got: list[tuple[float, Any]]
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
    from firmware_protocol.codes import EventCode

    try:
        faults = Fault(message.faults)
        return (f"Event {EventCode(message.event).name} (state "
                f"{FirmwareState(message.state).name}, faults {faults.names or 'none'})")
    except ValueError:
        return describe(message)
