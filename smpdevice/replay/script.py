"""A recording turned into a conversation script: the host's decisions and what the pen said
after each.

The host's commands are its decisions, compared one by one. What legitimately differs between
two runs is left out of the comparison:
- sequence numbers (the pen's replies are renumbered to the replaying host's);
- LEASE_RENEW, sent on the host's timer (how many fit between two decisions depends on the
  timing of that run): answered as the pen answered the latest recorded one at or before
  that time (an ACK, a NACK such as BOOTING, or nothing when it went unanswered), never
  compared;
- retransmissions (the same frame again, same seq): one decision.
The pen's frames between decision k and k+1 (telemetry, events, replies) are step k's; a
replay delivers them on the recorded timing after decision k, and all of them before it
answers decision k+1, so the replaying controller sees them in the order the live one did.
A host-side input (`smpdevice.replay.inputs`) is placed the same way: after decision k, at
its recorded time.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field

from firmware_protocol import Frame, Message, MsgType, StreamDecoder
from firmware_protocol.messages import Ack
from smpdevice.records.frames import Recording
from smpdevice.replay.inputs import CHANNEL as INPUT_CHANNEL
from smpdevice.replay.inputs import Input, parse_input

HOUSEKEEPING = frozenset({MsgType.LEASE_RENEW})
RECONNECT_PREFIX = "reconnect/"  # `/reconnect/host`, `/reconnect/pen`: a reconnect's handshake
SESSION_CHANNELS = ("/host", "/pen", INPUT_CHANNEL, "/" + RECONNECT_PREFIX + "host",
                    "/" + RECONNECT_PREFIX + "pen")
REPLY_WINDOW_S = 0.25  # a renewal's reply may still be on its way this long after it
DUP_WINDOW = 16  # host frames back in which a same-seq, same-bytes frame is a retransmission


@dataclass
class PenFrame:
    t_s: float
    frame: Frame
    reply_to: int | None = None  # index of the decision it answers (renumbered), else None

    @property
    def message(self) -> Message:
        return self.frame.message


@dataclass
class Step:
    """Decision `index` (None: before the first) and what the pen said until the next one."""

    index: int | None
    t_s: float
    command: Frame | None
    pen: list[PenFrame] = field(default_factory=list)


@dataclass
class Script:
    steps: list[Step]  # steps[0] is before the first decision
    # type -> [(after step, recorded time, reply or None: it went unanswered)], in order
    housekeeping_replies: dict[int, list[tuple[int, float, Message | None]]]
    host_frames: int = 0  # every host frame recorded (retransmissions, renewals included)
    pen_frames: int = 0
    inputs: list[Input] = field(default_factory=list)  # host-side inputs, in recorded order

    @property
    def decisions(self) -> list[Step]:
        return self.steps[1:]

    def housekeeping_reply(self, msg_type: int, step: int,
                           t_s: float | None = None) -> Message | None:
        """How the pen answered the latest recorded housekeeping command of this type sent at
        or before `step` (and, within `step`, at or before recorded time `t_s`); None: that
        one went unanswered (dropped on the way, a refusal's silence). Before the first
        recorded one, as the first was answered; none recorded: an ACK."""
        recorded = self.housekeeping_replies.get(msg_type, [])
        if not recorded:
            return Ack(acked_type=msg_type)
        reply = recorded[0][2]
        for at, sent_s, message in recorded:
            if at > step or (at == step and t_s is not None and sent_s > t_s):
                break
            reply = message
        return reply


def decode_stream(chunks: list[tuple[float, bytes]]) -> list[tuple[float, Frame]]:
    """Frames of one direction, each stamped with the time of the chunk that completed it."""
    decoder = StreamDecoder()
    out: list[tuple[float, Frame]] = []
    for t_s, data in chunks:
        out.extend((t_s, frame) for frame in decoder.feed(data))
    out.extend((chunks[-1][0] if chunks else 0.0, f) for f in decoder.expire())
    return out


def merged_frames(entries: list[tuple[float, str, bytes]]) -> list[tuple[float, str, Frame]]:
    """Both directions' frames in recorded order: (time, "host" | "pen", frame)."""
    return [(t_s, who, frame) for t_s, _, who, frame in _merged(entries)]


def _merged(entries: list[tuple[float, str, bytes]]) -> list[tuple[float, int, str, Frame]]:
    """`merged_frames`, each with the index of the entry holding its last byte."""
    host = decode_stream([(t, d) for t, who, d in entries if who == "host"])
    pen = decode_stream([(t, d) for t, who, d in entries if who == "pen"])
    # Merge back in recorded order: a frame sits where its last byte was recorded. The two
    # decoders keep each direction's order; ties go to the host (it was shown first).
    merged: list[tuple[float, int, str, Frame]] = []
    positions = {"host": iter(_positions(entries, "host", host)),
                 "pen": iter(_positions(entries, "pen", pen))}
    for who, frames in (("host", host), ("pen", pen)):
        for (t_s, frame), pos in zip(frames, positions[who], strict=True):
            merged.append((t_s, pos, who, frame))
    merged.sort(key=lambda x: (x[1], 0 if x[2] == "host" else 1))
    return merged


def build_script(entries: list[tuple[float, str, bytes]]) -> Script:
    """`entries`: (time, "host" | "pen" | "input", bytes) in recorded order; an input is
    placed after the decisions recorded before it (`Script.inputs`)."""
    merged = _merged(entries)
    host_count = sum(1 for _, _, who, _ in merged if who == "host")
    steps = [Step(None, merged[0][0] if merged else 0.0, None)]
    housekeeping: dict[int, list[tuple[int, float, Message | None]]] = {}
    renewals: dict[int, tuple[int, int]] = {}  # host seq -> (its type, index in its list)
    seq_to_decision: dict[int, int | None] = {}  # host seq -> decision index (None: renewal)
    recent: list[bytes] = []
    script = Script(steps, housekeeping, host_count, len(merged) - host_count)
    inputs = collections.deque((i, t_s, data) for i, (t_s, who, data) in enumerate(entries)
                               if who == "input")
    handshakes = _handshakes(entries)

    def add_input(i: int, t_in: float, data: bytes) -> None:
        item = parse_input(data, len(steps) - 1, t_in)
        if item is not None and item.kind == "reconnect":
            item = dataclasses.replace(item, handshake=tuple(handshakes.get(i, ())))
        if item is not None:
            script.inputs.append(item)

    for t_s, pos, who, frame in merged:
        while inputs and inputs[0][0] < pos:
            add_input(*inputs.popleft())
        if who == "host":
            raw = bytes((frame.seq,)) + frame.message.pack() + bytes((frame.message.TYPE,))
            if raw in recent:
                continue  # a retransmission of a frame already counted
            recent = [*recent, raw][-DUP_WINDOW:]
            if frame.message.TYPE in HOUSEKEEPING:
                seq_to_decision[frame.seq] = None
                sent = housekeeping.setdefault(frame.message.TYPE, [])
                renewals[frame.seq] = (frame.message.TYPE, len(sent))
                sent.append((len(steps) - 1, t_s, None))
                continue
            index = len(steps) - 1
            steps.append(Step(index, t_s, frame))
            seq_to_decision[frame.seq] = index
            continue
        if frame.seq == 0:
            steps[-1].pen.append(PenFrame(t_s, frame))
        elif frame.seq in seq_to_decision:
            decision = seq_to_decision[frame.seq]
            if decision is None and frame.seq in renewals:
                kind, at = renewals.pop(frame.seq)  # its first reply
                step, sent_s, _ = housekeeping[kind][at]
                housekeeping[kind][at] = (step, sent_s, frame.message)
            else:
                steps[-1].pen.append(PenFrame(t_s, frame, reply_to=decision))
        # else: a reply to a command from before the recording began: nobody asked it here
    _unknown_at_the_end(housekeeping, max((t for t, _, w, _ in merged if w == "pen"),
                                          default=None))
    for i, t_in, data in inputs:  # after the last frame
        add_input(i, t_in, data)
    return script


def _handshakes(entries: list[tuple[float, str, bytes]]
                ) -> dict[int, list[tuple[float, str, bytes]]]:
    """Each recorded reconnect's handshake (`/reconnect/*`, recorded as its attempt ended),
    by the index of its `reconnect` input: the entries after it, up to the next one."""
    out: dict[int, list[tuple[float, str, bytes]]] = {}
    current: list[tuple[float, str, bytes]] | None = None
    for i, (t_s, who, data) in enumerate(entries):
        if who == "input":
            item = parse_input(data, 0, t_s)
            if item is not None and item.kind == "reconnect":
                current = out.setdefault(i, [])
        elif who.startswith(RECONNECT_PREFIX) and current is not None:
            current.append((t_s, who.removeprefix(RECONNECT_PREFIX), data))
    return out


def _unknown_at_the_end(housekeeping: dict[int, list[tuple[int, float, Message | None]]],
                       last_pen_s: float | None) -> None:
    """Drop the last renewals without a reply when nothing tells they went unanswered (no
    later one of their type, the pen's last frame within REPLY_WINDOW_S): the recording may
    simply have ended before their reply."""
    for sent in housekeeping.values():
        while sent and sent[-1][2] is None and (
                last_pen_s is None or last_pen_s - sent[-1][1] <= REPLY_WINDOW_S):
            sent.pop()


def _positions(entries: list[tuple[float, str, bytes]], who: str,
               frames: list[tuple[float, Frame]]) -> list[int]:
    """For each decoded frame of `who`, the index of the entry holding its last byte."""
    from firmware_protocol import encode

    ends: list[int] = []  # cumulative byte count at the end of each entry of `who`
    idx: list[int] = []
    total = 0
    for i, (_, w, d) in enumerate(entries):
        if w == who:
            total += len(d)
            ends.append(total)
            idx.append(i)
    out: list[int] = []
    # Frames are found in order; locate each by searching its bytes in the direction's stream.
    stream = b"".join(d for _, w, d in entries if w == who)
    pos = 0
    j = 0
    for _, frame in frames:
        data = encode(frame.message, frame.seq)
        at = stream.find(data, pos)
        end = (at + len(data)) if at >= 0 else pos
        pos = max(pos, end)
        while j < len(ends) - 1 and ends[j] < end:
            j += 1
        out.append(idx[j] if idx else 0)
    return out


def session_entries(rec: Recording) -> list[tuple[float, str, bytes]]:
    """The session's frames both ways, its inputs ("input") and its reconnects' handshakes
    ("reconnect/host", "reconnect/pen"), in recorded order."""
    return [(e.t_s, e.channel[1:], e.data) for e in rec.entries
            if e.channel in SESSION_CHANNELS]


def records_inputs(rec: Recording) -> bool:
    """Whether the recording keeps host-side inputs (older ones do not: none is known)."""
    return rec.meta.get("inputs") == INPUT_CHANNEL


def preamble_entries(rec: Recording) -> list[tuple[float, str, bytes]]:
    return [(0.0, e.channel.rsplit("/", 1)[1], e.data) for e in rec.entries
            if e.channel.startswith("/preamble/")]


def describe(message: Message | None) -> str:
    if message is None:
        return "nothing"
    return f"{type(message).__name__} {message.to_dict()}"
