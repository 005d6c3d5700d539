"""The recorded pen's port, connection by connection (`ReplayPen`'s side of `replay://`).

A recorded link loss (`link_lost`, cause `port`) fails the port as the pulled cable did. A
recorded reconnect (`reconnect`, session 20) is the controller opening the port anew: from its
point the recorded pen is plugged in again, on a new connection (a port opened before it stays
dead, after delivering what it had still to read, as a tty does), and answers the new
connection's handshake from the handshake the recording kept (`Input.handshake`, untimed, as a
connection's preamble), then goes on with the session's script, timed from the moment the
replayed controller is connected again as the recorded frames are from the moment the live one
was. A reconnect whose port did not open live (no handshake recorded) finds no port here.
Its handshake is compared whole (review 20 R2): a recorded command of it the replayed
controller never made by the time its `reconnect()` returned (a DISARM of an armed pen), or
one more made while it is still connecting, is a difference.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from serial.serialutil import SerialException

from firmware_protocol import StreamDecoder
from smpdevice.replay.difference import Difference
from smpdevice.replay.script import describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from firmware_protocol import Frame, Message
    from smpdevice.link.clock import Clock
    from smpdevice.replay.inputs import Input, ReplayInputs
    from smpdevice.replay.script import PenFrame, Script

LOST = ("the recorded pen's link was lost here (its recording shows the port failing at this "
        "point)")


class PenLink:
    """The connection state of a `ReplayPen` (its lock held by every method but the port's)."""

    clock: Clock
    session: Script
    inputs: ReplayInputs | None
    mute_from_t_s: float | None
    cut_at_s: float | None
    timing_tolerance_s: float
    difference: Difference | None
    controller_state: Callable[[], str] | None
    _lock: threading.Lock
    _rx: bytearray
    _decoder: StreamDecoder
    _recent: collections.deque[bytes]
    _pending: collections.deque[PenFrame]
    _script: Script
    _phase: str
    _next: int
    _seq: dict[int, int]
    _offset: float
    _anchor: tuple[float, float]

    def _init_link(self) -> None:
        self.generation = 0  # the connection the port was last opened for
        self.unplugged = False  # a recorded link loss came: the port fails from then on
        self._stale_rx: dict[int, bytearray] = {}  # what an older connection had to read
        self._held: collections.deque[PenFrame] = collections.deque()  # the session's, past
        self._reconnected_at_s = 0.0  # the recorded time the reconnect being replayed ended
        self._session_next = 1  # the session's next decision, kept while a handshake plays
        self._opened = -1  # the connection the replayed controller last opened a port for
        self._attempts = 0  # reconnects plugged in whose `reconnect()` has not returned

    def _release_due(self) -> None: ...  # (ReplayPen's)

    def _on_host(self, frame: Frame) -> None: ...  # (ReplayPen's)

    # ---------------------------------------------------------------- losing, plugging in

    def lose_link(self, t_s: float) -> None:
        """The recorded link loss (`t_s`: its recorded time) is due (under the lock): what the
        pen said before it is delivered, the rest was lost with the cable; the port then
        fails, the way a pulled cable makes a real port fail (review6 R04). What the session
        recorded past it came on a new connection (a reconnect): held for it."""
        while self._pending and self._pending[0].t_s <= t_s + 1e-9:
            self._emit(self._pending.popleft())
        self._held.extend(self._pending)
        self._pending.clear()
        self.unplugged = True

    def _emit(self, pf: PenFrame) -> None: ...  # (ReplayPen's)

    def plug_in(self, item: Input) -> None:
        """A recorded reconnect is due (under the lock): a new connection, on which the pen
        answers the recorded handshake; none recorded: its port did not open, nor does it
        here."""
        from smpdevice.replay.script import build_script

        self._attempts += 1  # (until its `reconnect_done`)
        self._stale_rx[self.generation] = self._rx  # the old port reads it, then fails
        self._rx = bytearray()
        self.generation += 1
        self._decoder = StreamDecoder()  # nothing from before is a retransmission, nor half
        self._recent.clear()              # a frame of this connection
        if self._phase == "session":  # the session's frames recorded past this point
            self._held.extend(self._pending)
            self._pending = collections.deque()
        if not item.handshake:
            self.unplugged = True
            return
        self.unplugged = False
        self.mute_from_t_s = None  # a silence judged before: this connection speaks again
        self._reconnected_at_s = max(t_s for t_s, _, _ in item.handshake)
        self._script = build_script([(0.0, who, data) for _, who, data in item.handshake])
        if self._phase == "session":
            self._session_next = self._next
        self._phase, self._next, self._seq = "reconnect", 1, {}
        self._pending = collections.deque(self._script.steps[0].pen)
        self._offset = -1e9  # a handshake: everything is due at once, as a preamble

    def reconnect_done(self, connected: bool) -> None:
        """The replayed controller's reconnect returned: connected, the session's script goes
        on from here; failed, the attempt's port is dead (the controller closed it)."""
        with self._lock:
            self._attempts -= 1
            if self._phase != "reconnect":
                return
            self.end_handshake("its reconnect() returned " + ("connected" if connected
                                                               else "failed"))
            if connected:
                return
            self._stale_rx[self.generation] = bytearray()
            self.generation += 1
            self.unplugged = True

    def end_handshake(self, how: str) -> None:
        """The reconnect's handshake is over (under the lock, in its phase; `how`: what ended
        it): a recorded command of it not made is the first difference, then the session's
        script goes on. Its commands are made before `reconnect()` returns, so one missing
        then was never made: a reconnect that no longer disarms an armed pen is no match. (A
        controller that never opened the new port differs in its states: compared there.)"""
        steps = self._script.steps
        if self.difference is None and self._next < len(steps) and \
                self._opened == self.generation:
            command = steps[self._next].command
            self.difference = self._in_handshake(
                f"{describe(command.message if command else None)} (the reconnect's "
                f"handshake, its command {self._next} of {len(steps) - 1})",
                f"nothing more: {how}")
        self._resume_session()

    def past_handshake(self, message: Message) -> bool:
        """A command past the recorded handshake's end (under the lock, in its phase): made
        once the replayed controller is connected, the session's (it may come before its
        `reconnect()` returned): back to the session's script, True. Made while it is still
        connecting, a command of its handshake the recorded one lacks: a difference, False
        (no run's last word: a DISARM there is the handshake's own)."""
        state = self.controller_state
        if state is None or state() != "connecting":
            self._resume_session()
            return True
        if self.difference is None:
            self.difference = self._in_handshake(
                f"no more commands in the reconnect's handshake ({len(self._script.steps) - 1}"
                " recorded)", describe(message))
        return False

    def _in_handshake(self, expected: str, got: str) -> Difference:
        """A difference in the reconnect's handshake, placed after the session's decision it
        came after, at the recorded time the reconnect ended."""
        start_s = self.session.steps[0].t_s
        return Difference("command", self._session_next - 1, self._reconnected_at_s - start_s,
                          expected, got)

    def _resume_session(self) -> None:
        """Back to the session's script, its frames recorded past the reconnect timed from
        now, as they were from the moment the live controller was connected again."""
        now = self.clock.now()
        self._script, self._phase, self._seq = self.session, "session", {}
        self._next = self._session_next
        self._pending, self._held = self._held, collections.deque()
        self._offset = now - self._reconnected_at_s
        self._anchor = (now, self._reconnected_at_s)

    def await_past_cut(self) -> None:
        """The replayed session looks between passes where no recorded look is left. In a
        recording cut short once every recorded decision was made, the live look came after
        its end (its thread held meanwhile, as by a reconnect made in it, or died): let the
        inputs recorded before the end land first, at their points, and a reconnect's attempt
        end, as live (virtual clock, bounded); then its point is passed (review 20 R2: else
        the replayed session went on before the recorded link loss, disarming the pen live
        lost the link to). Otherwise at once."""
        from smpdevice.link.clock import timebase_for

        inputs = self.inputs
        with self._lock:
            if (inputs is None or self.cut_at_s is None or self._phase != "session"
                    or self._next < len(self._script.steps)):
                return
            wait_s = max(self._end_s() - self.clock.now(), 0.0) + self.timing_tolerance_s + 1.0

        def landed() -> bool:
            with self._lock:
                self._release_due()
                return self.difference is not None or (
                    self.clock.now() + 1e-9 >= self._end_s() and self._attempts <= 0
                    and not any(item.timed for item in inputs.pending))

        cond = timebase_for(self.clock).condition()
        with cond:
            cond.wait_for(landed, wait_s)

    def _end_s(self) -> float:  # (ReplayPen's)
        raise NotImplementedError

    # ---------------------------------------------------------------- the port's side

    def open_port(self) -> int:
        """A port opened on `replay://NAME`: the connection it is for, or SerialException
        while the recorded pen is unplugged (the cable was out, live too)."""
        with self._lock:
            if self.unplugged:
                raise SerialException("the recorded pen's port is not there: its link was "
                                      "lost and not taken back at this point")
            self._opened = self.generation
            return self.generation

    def _stale(self, generation: int | None) -> bytearray | None:
        """What a port of an older connection has still to read (SerialException once it is
        read); None for the port of this connection."""
        if generation is None or generation == self.generation:
            return None
        left = self._stale_rx.get(generation)
        if not left:
            self._stale_rx.pop(generation, None)
            raise SerialException(LOST)
        return left

    def _check_plugged(self) -> None:
        if self.unplugged and not self._rx:
            raise SerialException(LOST)

    def in_waiting(self, generation: int | None = None) -> int:
        with self._lock:
            stale = self._stale(generation)
            if stale is not None:
                return len(stale)
            self._release_due()
            self._check_plugged()
            return len(self._rx)

    def read(self, size: int, generation: int | None = None) -> bytes:
        with self._lock:
            stale = self._stale(generation)
            if stale is None:
                self._release_due()
                self._check_plugged()
            source = self._rx if stale is None else stale
            data = bytes(source[:size])
            del source[:size]
            return data

    def write(self, data: bytes, generation: int | None = None) -> int:
        with self._lock:
            if self.unplugged or (generation is not None and generation != self.generation):
                raise SerialException("the recorded pen's link was lost: nothing more reaches "
                                      "it")
            for frame in self._decoder.feed(data):
                self._on_host(frame)
        return len(data)
