"""Host-side inputs: what changes the controller's decisions from outside the conversation.

The technician's stop (Ctrl-C, the console's stop, a service client's `session.stop` or its
driver gone: whatever a session's `should_stop` reports) and an E-stop request (the console,
`smp estop`, the monitor, the service) are not the controller's decisions, yet they change
what it sends next. A recording keeps each on its `/input` channel (JSON, with the controller's
clock time), in recorded order among the frames, so a replay knows the point of the
conversation it came at: after which of the host's decisions, and how long after it.

- `stop`: the first time the session's `should_stop()` answered yes (or Ctrl-C reached a pass
  as KeyboardInterrupt). `state` is the controller's state then: `running` (mid-pass, timed
  from the decision before it) or another (between passes: its place alone counts).
- `pen_stop`: a stop of the pen itself from outside the session, with its own commands (a
  lost driver, or a `session.stop` whose session did not stop by itself in time:
  `smpdevice.service.deadman.stop_and_disarm`).
- `disarm`: a disarm requested from outside the session while it is open (the console's or
  a service client's `pen.disarm`: `note_disarm` at its source, session 21c), e.g. to swap a
  calibration between two passes in one zone (idle only). A DISARM frame cannot be told by its
  type: the session disarms by itself too (another zone, its end), and those are never inputs.
- `estop`: the host wrote an ESTOP frame of a new sequence number (a retransmission is the
  same request). The controller never decides an E-stop by itself: every one is a request.
  One requested while the link is down (`held`: no frame crosses a dead port, and the state
  does not change) is told by the controller (`held_estop_listeners`, session 21); its
  `state` is `disconnected` (or `connecting`), and the reconnect after it tells the pen.
- `clear`: the host wrote a CLEAR_FAULTS frame of a new sequence number. The controller never
  clears by itself either: each is a technician's `clear_faults()` (review10a R02).
- `link_lost`: the controller lost the pen's link (review6 R04). `cause` `port`: the port
  failed (a pulled cable, a pen switched off), which no host decides: the replay's recorded
  pen fails its port at the same point. `cause` `silence`: the controller judged the pen
  silent, its own decision: recorded to show it, not fed (the recording's silence is the input).
- `between`: the session looked, between two passes, at what came since (review 19): no
  input itself, the point the inputs before it had all landed by (`await_between`).
- `reconnect`: the controller connected anew after a lost link (`pen.reconnect()`: the
  monitor's `r`, the service's reconnect), never of itself (session 20). The new connection's
  handshake is recorded on `/reconnect/host` and `/reconnect/pen` when the attempt ends (none:
  its port did not open), its bytes after that on `/host` and `/pen` as the session's.

A replay (`ReplayInputs`) applies each at the same point: a `stop` makes the replayed
session's `should_stop()` answer yes from then on; a `pen_stop` runs the same stop and disarm
on the replayed controller, an `estop` calls its `estop()`, a `clear` its
`clear_faults()` and a `disarm` its `disarm()`, each in a thread of its own as live; a
`link_lost` (port) makes the recorded pen's port fail, as the cable did; a `reconnect` plugs
the recorded pen in again on a new connection and calls the replayed controller's
`reconnect()` in a thread. What the controller then does about it is compared like any other
decision.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware_protocol import MsgType, StreamDecoder
from smpdevice.replay.difference import Difference

CHANNEL = "/input"
KINDS = ("stop", "pen_stop", "estop", "clear", "link_lost", "between", "reconnect", "disarm")
# host commands that are always someone's request, never the controller's decision
REQUESTED = {MsgType.ESTOP: "estop", MsgType.CLEAR_FAULTS: "clear"}
# the command each input that is one command makes (replayed: that command is the input's,
# not a decision the controller timed); a DISARM is one only when noted at its source
COMMANDS = {**REQUESTED, MsgType.DISARM: "disarm"}
MAX_REASON_CHARS = 200  # a link loss's reason, as the controller said it (shown, never parsed)
RETRANSMIT_WINDOW = 64  # host frames back in which the same ESTOP is a retransmission
CLEARING = "replay-clear"  # the thread of a `clear` being applied
HELD = "replay-held-estop"  # the thread of an E-stop held while the link was down
OFFLINE = ("disconnected", "connecting")  # an `estop` recorded in these was held (no frame)


# ------------------------------------------------------------------------ recording side

class InputTap:
    """Writes the `/input` entries of one recording (thread-safe: any thread may stop)."""

    def __init__(self, add: Callable[[dict[str, Any]], None],
                 state: Callable[[], str]) -> None:
        self._add = add
        self._state = state
        self._lock = threading.Lock()
        self._decoder = StreamDecoder()
        # (type, seq) of the last host frames: an ESTOP seen among them again is its
        # retransmission (sequence numbers wrap, so a later E-stop may reuse one)
        self._recent: collections.deque[tuple[int, int]] = collections.deque(
            maxlen=RETRANSMIT_WINDOW)
        self._stopped = False

    def on_host_bytes(self, data: bytes) -> None:
        """Before the host's bytes are recorded: an ESTOP or CLEAR_FAULTS of a new seq is a
        request."""
        with self._lock:
            for frame in self._decoder.feed(data):
                key = (int(frame.message.TYPE), frame.seq)
                kind = REQUESTED.get(frame.message.TYPE)
                if kind is not None and key not in self._recent:
                    self._add({"kind": kind, "seq": frame.seq, "state": self._state()})
                self._recent.append(key)

    def stop(self, source: str) -> None:
        """The technician's stop reached the session (once: a stop stays requested)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._add({"kind": "stop", "source": source, "state": self._state()})

    def between(self) -> None:
        """The session's check between two passes, made right after this (its point)."""
        self._add({"kind": "between", "state": self._state()})

    def pen_stop(self, source: str) -> None:
        """A stop and disarm of the pen from outside the session (each one is recorded)."""
        self._add({"kind": "pen_stop", "source": source, "state": self._state()})

    def disarm(self, source: str) -> None:
        """A disarm requested from outside the session (each one is recorded, before its
        DISARM frame: `note_disarm`)."""
        self._add({"kind": "disarm", "source": source, "state": self._state()})

    def held_estop(self, state: str) -> None:
        """An E-stop requested while the link is down (`state`: disconnected or connecting):
        no ESTOP frame is written, so `on_host_bytes` never sees it."""
        self._add({"kind": "estop", "held": True, "state": state})

    def reconnect(self, state: str) -> None:
        """The controller opens its port anew (`state`: its state before, `disconnected`)."""
        self._add({"kind": "reconnect", "state": state})

    def new_connection(self) -> None:
        """The tap moves to a new connection: its frames are numbered anew, and a frame cut
        by the old one's loss is no frame of it."""
        with self._lock:
            self._decoder = StreamDecoder()
            self._recent.clear()

    def link_lost(self, reason: str, state: str, *, silence: bool) -> None:
        """The controller lost the link (`state`: its state before)."""
        self._add({"kind": "link_lost", "cause": "silence" if silence else "port",
                   "reason": str(reason)[:MAX_REASON_CHARS], "state": state})

    def watch(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        """`should_stop`, recording the first yes."""
        def watched() -> bool:
            if should_stop():
                self.stop("should_stop")
                return True
            return False
        return watched


# ------------------------------------------------------------------------ replay side

@dataclass(frozen=True)
class Input:
    after: int  # how many of the session's decisions came before it
    t_s: float  # recorded time (since the recording began)
    kind: str
    state: str  # the controller's state when it came
    # a `reconnect`'s new connection: its handshake ((time, "host" | "pen", bytes), in the
    # order they crossed); empty: its port did not open
    handshake: tuple[tuple[float, str, bytes], ...] = ()

    @property
    def timed(self) -> bool:
        """Mid-pass, or an action of its own: its time after the decision before counts."""
        return self.kind != "between" and (self.kind != "stop" or self.state == "running")


def parse_input(data: bytes, after: int, t_s: float) -> Input | None:
    """One `/input` entry; None for one this version does not know (skipped, not guessed)."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("kind") not in KINDS:
        return None
    if value["kind"] == "link_lost" and value.get("cause") != "port":
        return None  # a silence the controller judged: its own decision, compared, not fed
    return Input(after, t_s, str(value["kind"]), str(value.get("state", "")))


class ReplayInputs:
    """The recorded inputs, applied to a replay as its conversation reaches their points.

    The recorded pen calls `point(decisions, now, anchor)` whenever it looks at the time:
    every input whose point has come is applied (`press_estop` or `stop_pen` in a thread of
    its own, or the stop flag). `should_stop` is the replayed session's: yes once a stop input
    is applied, and it applies one itself when asked at its point (between passes nothing is
    timed: the session asks once there, as the live one did)."""

    def __init__(self, inputs: list[Input]) -> None:
        self.pending = collections.deque(inputs)
        self.applied: list[Input] = []
        self.stopped = False
        self.press_estop: Callable[[], None] | None = None
        # an `estop` recorded while the link was down (given it): pressed once the replayed
        # controller lost it too; one that never does differs there (`actions.py`)
        self.press_held_estop: Callable[[Input], None] | None = None
        self.clear_faults: Callable[[], None] | None = None
        self.stop_pen: Callable[[], None] | None = None
        self.disarm_pen: Callable[[], None] | None = None  # a `disarm`: the pen's disarm()
        # Called at once (with the loss's recorded time) under the recorded pen's lock: it
        # fails its port there. Never in a thread: the port is dead from that point on.
        self.lose_link: Callable[[float], None] | None = None
        # A `reconnect`: `plug_in` at once under the recorded pen's lock (a new connection),
        # then `reconnect` in a thread, as the technician's or the service's own.
        self.plug_in: Callable[[Input], None] | None = None
        self.reconnect: Callable[[], None] | None = None
        self._decisions = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []  # the inputs applied, each in its own
        self._held: list[tuple[threading.Thread, Input]] = []  # (held E-stops' presses)

    def point(self, decisions: int, now: float, anchor: tuple[float, float]) -> list[Input]:
        """Apply what is due after `decisions` matched at replay time `now`; `anchor`:
        (replay time, recorded time) of the last decision. Returns the requested commands
        applied (E-stops, clears, disarms)."""
        actions: list[Input] = []
        with self._lock:
            self._decisions = decisions
            while self.pending:
                nxt = self.pending[0]
                if nxt.after > decisions:
                    break
                if nxt.after == decisions and nxt.timed and \
                        anchor[0] + (nxt.t_s - anchor[1]) > now + 1e-9:
                    break
                if not nxt.timed and nxt.after == decisions:
                    break  # applied when the session asks (`should_stop`)
                if nxt.kind == "clear" and (actions or any(
                        thread.is_alive() for thread in self._threads)):
                    break  # once the E-stop (any input) before it returned, as live
                if nxt.kind == "reconnect" and (any(a.kind != "link_lost" for a in actions) or any(
                        thread.is_alive() for thread in self._threads)):
                    break  # once the attempt (any input) before it returned, as live
                if nxt.kind == "estop" and (any(a.kind == "clear" for a in actions) or any(
                        t.is_alive() and t.name == CLEARING for t in self._threads)):
                    break  # once the clear before it returned, as live: not into its latch
                self._apply(self.pending.popleft(), actions)
        acts = {"estop": self.press_estop, "clear": self.clear_faults,
                "reconnect": self.reconnect, "disarm": self.disarm_pen}
        lost = False
        for item in actions:  # in recorded order: a loss, then the reconnect that ends it
            if item.kind == "link_lost":
                if not lost and self.lose_link is not None:
                    self.lose_link(item.t_s)
                lost = True
                continue
            if item.kind == "reconnect" and self.plug_in is not None:
                self.plug_in(item)
            act = acts.get(item.kind, self.stop_pen)
            name = HELD if held(item) else f"replay-{item.kind}"
            if held(item):
                press = self.press_held_estop
                act = None if press is None else functools.partial(press, item)
            if act is not None:
                thread = threading.Thread(target=act, name=name, daemon=True)
                thread.start()
                with self._lock:
                    self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                    if name == HELD:
                        self._held.append((thread, item))
        return [item for item in actions if item.kind in COMMANDS.values()]

    def _apply(self, item: Input, actions: list[Input]) -> None:
        self.applied.append(item)
        if item.kind == "stop":
            self.stopped = True
        elif item.kind != "between":  # a point passed, nothing to do
            actions.append(item)

    def next_between(self) -> Input | None:
        """The first `between` point still to come, or None."""
        with self._lock:
            return next((item for item in self.pending if item.kind == "between"), None)

    def between_ready(self, decisions: int) -> bool:
        """Whether the session may make its check between passes after `decisions` matched:
        the first `between` point is next, every decision and input before it landed (their
        threads ended), as live (review 19: an E-stop and its clear before the check). None
        to come, or one past (the replay went otherwise: compared elsewhere): yes."""
        with self._lock:
            marker = next((item for item in self.pending if item.kind == "between"), None)
            if marker is None or marker.after < decisions:
                return True
            return (self.pending[0] is marker and marker.after == decisions
                    and not any(thread.is_alive() for thread in self._threads))

    def pass_between(self, decisions: int) -> None:
        """The session made its check between passes: its point is passed."""
        with self._lock:
            nxt = self.pending[0] if self.pending else None
            if nxt is not None and nxt.kind == "between" and nxt.after == decisions:
                self._apply(self.pending.popleft(), [])

    def offline_pending(self) -> bool:
        """Whether a recorded reconnect, or an E-stop held while the link was down, is still
        to come (the inputs go on while the pen is unplugged, up to it)."""
        with self._lock:
            return any(item.kind == "reconnect" or held(item) for item in self.pending)

    def held_due_s(self, replay_time: Callable[[float], float]) -> float:
        """The replay clock's time the last held E-stop still to come is due at (0: none)."""
        with self._lock:
            due = [replay_time(item.t_s) for item in self.pending if held(item)]
        return max([0.0, *due])

    def held_left(self) -> Difference | None:
        """At the replay's end: an E-stop held while the link was down that was never
        pressed (its point never came, or its press still waits) is a difference, never a
        skip: it leaves no frame nor state change that would show its absence."""
        with self._lock:
            left = next((item for thread, item in self._held if thread.is_alive()),
                        next((item for item in self.pending if held(item)), None))
        if left is None:
            return None
        return held_difference(left, "the replay ended before it was pressed")

    def should_stop(self) -> bool:
        with self._lock:
            if self.stopped:
                return True
            nxt = self.pending[0] if self.pending else None
            if (nxt is not None and nxt.kind == "stop" and not nxt.timed
                    and nxt.after == self._decisions):
                self._apply(self.pending.popleft(), [])
            return self.stopped


def held(item: Input) -> bool:
    """An `estop` recorded while the link was down (no frame: the controller held it)."""
    return item.kind == "estop" and item.state in OFFLINE


def held_difference(item: Input, got: str) -> Difference:
    """The difference a held E-stop the replayed controller could not take as live names."""
    return Difference("input", item.after, item.t_s,
                      "an E-stop pressed while the link was down (held: no frame, no state "
                      "change; its reconnect tells the pen)", got)
