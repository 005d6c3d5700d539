"""The recorded pen: answers a replaying controller from a script, as `replay://NAME`.

Each host frame the controller writes is checked against the script's next decision (see
`smpdevice.replay.script`); a match releases what the pen said after it, on the recorded
timing re-anchored at the moment of the match; the first mismatch is kept as `difference`
and the pen goes silent (the controller then times out, as it would with a dead pen).
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable

from firmware_protocol import Frame, MsgType, StreamDecoder, encode
from firmware_protocol.messages import Ack, Telemetry
from smpdevice.link.clock import Clock
from smpdevice.replay.difference import Difference, same_message
from smpdevice.replay.inputs import COMMANDS, ReplayInputs
from smpdevice.replay.pen_link import PenLink
from smpdevice.replay.script import DUP_WINDOW, HOUSEKEEPING, PenFrame, Script, describe
from smpdevice.replay.start import LATCHED

# A run ends its recording as its session ends, and its last words to the pen (stop the needle,
# disarm, on the way out of `with PenController`) may come just after, or just before, as the
# threads fall: a stop past the recording's end is no difference. Any other command is, except
# past the end of a recording cut short (`ReplayPen.cut_at_s`): nothing of the run is known
# there, so nothing the replay does there is compared.
AFTER_THE_END = frozenset({MsgType.NEEDLE_STOP, MsgType.DISARM})

# How much later or earlier than recorded a decision may come (measured from the one before).
# The live host ran on wall time, where a loaded machine wakes a thread late, so the replay
# (virtual time: never late) may decide earlier than recorded by up to EARLY_TOLERANCE_S;
# later than recorded by more than TIMING_TOLERANCE_S is the controller's own doing.
TIMING_TOLERANCE_S = 0.15
EARLY_TOLERANCE_S = 0.5
__all__ = ["AFTER_THE_END", "EARLY_TOLERANCE_S", "Difference", "ReplayPen", "lookup",
           "same_message"]
_registry: dict[str, ReplayPen] = {}
_registry_lock = threading.Lock()
_names = itertools.count(1)


class ReplayPen(PenLink):
    """One scripted pen (thread-safe: the link's reader, its writers and the clock's driver;
    its connections: `smpdevice.replay.pen_link`)."""

    def __init__(self, preamble: Script, session: Script, clock: Clock,
                 timing_tolerance_s: float = TIMING_TOLERANCE_S) -> None:
        self.clock = clock
        self.timing_tolerance_s = timing_tolerance_s
        self._anchor: tuple[float, float] = (0.0, 0.0)  # (replay now, recorded t) of the last
        self.name = f"replay{next(_names)}"
        self._lock = threading.Lock()
        self._rx = bytearray()
        self._decoder = StreamDecoder()
        self.session = session
        self._script = preamble
        self._phase = "preamble"
        self._next = 1
        self._pending: collections.deque[PenFrame] = collections.deque(preamble.steps[0].pen)
        # What the pen said after the preamble's last decision, past its reply and first
        # report, came after the handshake (before the session: a reboot, a latch): with
        # `hold_after_handshake` (a recording with its start state) it is delivered as the
        # session begins, not into the handshake (review 20).
        self.hold_after_handshake = False
        self._after_handshake: list[PenFrame] = []
        self._offset = -1e9  # preamble: everything is due at once
        self._seq: dict[int, int] = {}
        # The host frames last seen (as the script counts them): one seen again within them
        # is the controller's retransmission, whichever frames went out in between (an ESTOP
        # the pen confirmed late is sent again after the NEEDLE_STOP that followed it).
        self._recent: collections.deque[bytes] = collections.deque(maxlen=DUP_WINDOW)
        self.difference: Difference | None = None
        # The technician's E-stop is an input, not a decision. A recording made before inputs
        # were kept (`inputs` None): when its next decision is an ESTOP and its time has come,
        # `press_estop` is called (in a thread of its own) so the replaying controller gets
        # the same input at the same moment.
        self.press_estop: Callable[[], None] | None = None
        self._pressed: set[int] = set()
        # The recorded host-side inputs (`smpdevice.replay.inputs`); None for a recording made
        # before they were kept, which presses E-stop where its next decision is an ESTOP.
        self.inputs: ReplayInputs | None = None
        self.matched = 0
        self.finished = False
        self.controller_state: Callable[[], str] | None = None  # the replayed one's (runner)
        self._init_link()  # unplugged, the connection's generation (pen_link.py)
        # A loss the live controller judged from silence: the pen's last word (recorded time).
        # Past it the recorded pen answers nothing, housekeeping included, as live.
        self.mute_from_t_s: float | None = None
        # A recording cut short (the host died, or its recording stopped on a full disk): the
        # recorded time of its last entry. Past it the run's decisions are unknown: once every
        # recorded decision is made and the replay's clock is past it, the replayed session is
        # stopped (`should_stop`, the run's way out) and what it sends is not compared.
        self.cut_at_s: float | None = None
        self.ended_at: float | None = None  # replay clock when the cut recording's end came
        with _registry_lock:
            _registry[self.name] = self

    @property
    def url(self) -> str:
        return f"replay://{self.name}"

    def close(self) -> None:
        with _registry_lock:
            _registry.pop(self.name, None)

    def replay_time(self, t_s: float) -> float:
        """The replay clock's time of recorded time `t_s`, timed from the last decision."""
        with self._lock:
            return self._at(t_s)

    def _at(self, t_s: float) -> float:
        return self._anchor[0] + (t_s - self._anchor[1])

    def _end_s(self) -> float:
        """The replay clock's time of the end of a recording cut short (`cut_at_s` is set)."""
        assert self.cut_at_s is not None
        return self._at(self.cut_at_s)

    def preamble_next(self) -> int | None:
        """The type of the preamble's next host decision not yet made: one made on this
        connection after its handshake and before the session (a technician's clear of the
        fault a lost link left), or None."""
        with self._lock:
            steps = self._script.steps
            if self._phase != "preamble" or self._next >= len(steps):
                return None
            command = steps[self._next].command
            return None if command is None else int(command.message.TYPE)

    def begin_session(self) -> None:
        """The handshake is done: from now on the session's script, timed from now."""
        with self._lock:
            script = self._script = self.session
            self._phase = "session"
            self._next = 1
            self._seq = {}
            self._pending = collections.deque([*self._after_handshake, *script.steps[0].pen])
            self._after_handshake = []
            self._offset = self.clock.now() - script.steps[0].t_s
            self._anchor = (self.clock.now(), script.steps[0].t_s)

    def differ(self, difference: Difference | None) -> None:
        """A difference found outside the conversation (the start state): the first one
        counts, and the pen falls silent."""
        with self._lock:
            if difference is not None and self.difference is None:
                self.difference = difference

    def unplug(self) -> None:
        """The recording began with the link down: the port fails now, as a cable pulled."""
        with self._lock:
            self.lose_link(self.clock.now() - self._offset)

    def caught_up(self) -> bool:
        """Everything the pen said before the next recorded decision is delivered."""
        with self._lock:
            self._release_due()
            return not self._pending or self.difference is not None

    def should_stop(self) -> bool:
        """The replayed session's `should_stop`: yes once the recorded stop's point came, or
        once a recording cut short has run out (`_past_end`)."""
        with self._lock:
            self._release_due()
            if self._past_end():
                return True
            if self.inputs is None or self._phase != "session":
                return False
            return self.inputs.should_stop()

    def await_between(self) -> None:
        """The replayed session checks between two passes (`TreatmentSession.between_point`):
        if the live one's check came after inputs (an E-stop, a clear) and the pen's frames
        since the last decision, let virtual time run until they have landed here too,
        whatever this thread's timing (review 19), and, if it saw the controller latched (a
        reboot's BOOTED just before, review 20), until the replayed one is too (bounded: one
        that never latches then differs in what it sends); then its point is passed."""
        inputs = self.inputs
        marker = None if inputs is None or self._phase == "preamble" else inputs.next_between()
        if inputs is None or marker is None:
            self.await_past_cut()  # (pen_link.py)
            return

        def ready() -> bool:
            with self._lock:
                self._release_due()
                if self.difference is not None or (self.unplugged
                                                   and not inputs.offline_pending()):
                    return True
                if not inputs.between_ready(self._next - 1):
                    return False
                if marker.after == self._next - 1 and self._pending and \
                        self._pending[0].t_s <= marker.t_s + 1e-9:
                    return False  # the pen said more before the live look (its reboot)
            # ... and the live look saw it latched: the replayed one too, once it acted on it
            seen = self.controller_state
            return marker.state not in LATCHED or seen is None or seen() == marker.state

        from smpdevice.link.clock import timebase_for

        cond = timebase_for(self.clock).condition()
        with cond:
            cond.wait_for(ready, max(self.replay_time(marker.t_s) - self.clock.now(), 0.0)
                          + self.timing_tolerance_s + 1.0)
        with self._lock:
            inputs.pass_between(self._next - 1)

    def _past_end(self) -> bool:
        """A recording cut short has run out: every recorded decision made, everything the pen
        said delivered, and the replay's clock past the recording's last entry."""
        if self.ended_at is not None:
            return True
        if (self.cut_at_s is None or self._phase != "session" or self.difference is not None
                or self._next < len(self._script.steps) or self._pending):
            return False
        now = self.clock.now()
        if now + 1e-9 < self._end_s():
            return False
        self.ended_at = now
        return True

    def _unrecorded(self) -> bool:
        """Whether a command the recording lacks may have been the run's after its recording
        was cut: every recorded decision made, and it comes past the end less the time a
        decision may come early (the run's may have come that late and been lost with the
        recording's tail)."""
        if self.cut_at_s is None or self._phase != "session":
            return False
        early_s = max(EARLY_TOLERANCE_S, self.timing_tolerance_s)
        return self.clock.now() + 1e-9 >= self._end_s() - early_s

    def pending_for_s(self) -> float:
        """Clock time until the last frame now pending is due."""
        with self._lock:
            if not self._pending:
                return 0.0
            return max(0.0, self._pending[-1].t_s + self._offset - self.clock.now())

    def finish(self) -> Difference | None:
        """The session is over: a decision still unplayed is a difference; then ack anything."""
        with self._lock:
            if self._phase == "reconnect":  # its handshake never ended: the session's next
                self.end_handshake("the session ended")
            steps = self._script.steps
            if self.difference is None and self._phase == "session" and self._next < len(steps):
                step = steps[self._next]
                self.difference = Difference(
                    "end", self._next - 1, step.t_s - steps[0].t_s,
                    describe(step.command.message if step.command else None),
                    "nothing more from the controller")
            self.finished = True
            return self.difference

    # ---------------------------------------------------------------- the port's side

    def _release_due(self) -> None:
        if self.difference is not None:
            return
        inputs = self.inputs
        if self.unplugged and (inputs is None or not inputs.offline_pending()):
            return  # (a reconnect or held E-stop still to come: inputs go on up to it)
        now = self.clock.now()
        if inputs is None:
            self._maybe_press_estop(now)
        elif self._phase == "session":
            applied = inputs.point(self._next - 1, now, self._anchor)
            nxt = self._next_type()
            kind = COMMANDS.get(nxt) if nxt is not None else None
            if any(item.kind == kind for item in applied):
                self._pressed.add(self._next)  # the input's command, not a decision it timed
        if self.unplugged:
            return
        while self._pending and self._pending[0].t_s + self._offset <= now + 1e-9:
            self._emit(self._pending.popleft())

    def _muted(self) -> bool:
        mute = self.mute_from_t_s
        return (mute is not None and self._phase == "session"
                and self.clock.now() > self._at(mute) + 1e-9)

    def _next_type(self) -> MsgType | None:
        """The type of the session's next recorded host decision, or None."""
        steps = self._script.steps
        if self._phase != "session" or self._next >= len(steps):
            return None
        command = steps[self._next].command
        return None if command is None else MsgType(command.message.TYPE)

    def _next_is_estop(self) -> bool:
        return self._next_type() == MsgType.ESTOP

    def _maybe_press_estop(self, now: float) -> None:
        press = self.press_estop
        if press is None or self._next in self._pressed or not self._next_is_estop():
            return
        step = self._script.steps[self._next]
        if self._at(step.t_s) <= now + 1e-9:
            self._pressed.add(self._next)
            threading.Thread(target=press, name="replay-estop", daemon=True).start()

    def _emit(self, pf: PenFrame) -> None:
        if pf.reply_to is None:
            self._rx += encode(pf.message, 0)
            return
        seq = self._seq.get(pf.reply_to)
        if seq is not None:
            self._rx += encode(pf.message, seq)

    def _on_host(self, frame: Frame) -> None:
        message = frame.message
        if self.finished:  # closing after the session: a plain pen that agrees to everything
            self._rx += encode(Ack(acked_type=message.TYPE), frame.seq)
            return
        if self.difference is not None:
            return
        raw = encode(message, frame.seq)
        if raw in self._recent and message.TYPE not in HOUSEKEEPING:
            return  # the controller's own retransmission: the reply is on its way
        if (self._phase == "reconnect" and self._next >= len(self._script.steps)
                and message.TYPE not in HOUSEKEEPING and not self.past_handshake(message)):
            return  # (pen_link.py)
        self._recent.append(raw)
        if message.TYPE in HOUSEKEEPING:
            if self._muted():
                return  # the live pen had fallen silent here: no answer was recorded
            reply = self._script.housekeeping_reply(message.TYPE, self._next - 1,
                                                    self.clock.now() - self._offset)
            if reply is not None:  # None: the recorded pen left the latest one unanswered
                self._rx += encode(reply, frame.seq)
            return
        steps = self._script.steps
        now_s = self.clock.now() - self._offset - steps[0].t_s
        if self._next >= len(steps):
            if message.TYPE in AFTER_THE_END or self._unrecorded():  # the run stopped
                if self._muted():                                   # recording, then the pen
                    return
                self._rx += encode(Ack(acked_type=message.TYPE), frame.seq)
                return
            self.difference = Difference("command", self._next - 1, now_s,
                                         "no more commands (the recording ends here)",
                                         describe(message))
            return
        step = steps[self._next]
        if step.command is None or not same_message(step.command.message, message):
            self.difference = Difference(
                "command", self._next - 1, step.t_s - steps[0].t_s,
                describe(step.command.message if step.command else None), describe(message))
            return
        if self._phase == "session":
            late_s = self.clock.now() - self._at(step.t_s)
            if self._next in self._pressed:
                late_s = 0.0  # an input replayed, not a decision timed by the controller
            if late_s > self.timing_tolerance_s or -late_s > max(EARLY_TOLERANCE_S,
                                                                  self.timing_tolerance_s):
                self.difference = Difference(
                    "command", self._next - 1, step.t_s - steps[0].t_s,
                    f"{describe(step.command.message)} {step.t_s - self._anchor[1]:.3f} s "
                    "after the decision before",
                    f"it {abs(late_s):.3f} s {'later' if late_s > 0 else 'earlier'} "
                    f"(tolerance {self.timing_tolerance_s} s later, {EARLY_TOLERANCE_S} s "
                    "earlier)")
                return
            self._anchor = (self.clock.now(), step.t_s)
        while self._pending:  # all the pen said before this decision, before its answer
            self._emit(self._pending.popleft())
        assert step.index is not None
        self._seq[step.index] = frame.seq
        if self._phase == "session":
            self._offset = self.clock.now() - step.t_s
        self._pending = collections.deque(step.pen)
        if self._phase == "preamble" and self.hold_after_handshake and \
                self._next == len(steps) - 1:
            self._pending, self._after_handshake = _first_report_on(step.pen)
        self._next += 1
        self.matched += 1
        self._release_due()


def _first_report_on(frames: list[PenFrame]
                     ) -> tuple[collections.deque[PenFrame], list[PenFrame]]:
    """`frames` split after the first report that follows every reply among them."""
    replies = [i for i, pf in enumerate(frames) if pf.reply_to is not None]
    after = replies[-1] + 1 if replies else 0
    for i in range(after, len(frames)):
        if isinstance(frames[i].message, Telemetry):
            return collections.deque(frames[:i + 1]), list(frames[i + 1:])
    return collections.deque(frames), []


def lookup(name: str) -> ReplayPen | None:
    with _registry_lock:
        return _registry.get(name)

