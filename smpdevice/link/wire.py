"""The wire: framing over a pyserial port, sequence numbers, replies, telemetry fan-out, history.

Bytes become frames in the thread that reads (`smpdevice.link.reading`: the reader thread, or
a caller waiting for its reply). Replies are matched to their command by sequence number;
TELEMETRY and EVENT frames go to listeners (a notifier, as python-can does it). Any failure of
reading (port gone, read error) ends in one call of `on_lost(error)`: no thread dies silently.

Retransmission timeouts adapt to the measured round trip (Jacobson/Karels, as TCP does) and are
bounded, so a command completes or fails within `max_command_time_s()`; never hangs.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial
import structlog

from firmware_protocol import Frame, Message, MsgType, StreamDecoder, encode
from firmware_protocol.codes import NackReason
from firmware_protocol.messages import EStop, NeedleStop, Telemetry
from smpdevice.errors import SmpError
from smpdevice.link.clock import MONOTONIC, Clock, TimedCondition, now_function, timebase_for
from smpdevice.link.notifier import Notifier
from smpdevice.link.rawport import write_raw
from smpdevice.link.reading import LinkReading

log = structlog.get_logger("smpdevice.link")

RTO_MIN_S = 0.02
RTO_MAX_S = 0.5
RTO_INITIAL_S = 0.1
MAX_ATTEMPTS = 4
HISTORY_FRAMES = 64


class LinkError(SmpError):
    """The link to the pen failed (timeout, port gone)."""


class LinkTimeout(LinkError):
    """A command got no reply after every retransmission."""


def no_reply_message(command: str, attempts: int) -> str:
    # Only the reply may have been lost: say so, so nobody assumes the command did nothing.
    return (
        f"no reply from the pen to {command} after {attempts} tries: it may or may not have "
        "been applied (commands carry absolute values, so sending it again is safe). "
        "Check the cable and that the pen is powered."
    )


class SupersededByEStop(SmpError):
    """A request asked before an ESTOP the host wrote: it is never (re)sent after that ESTOP."""


def superseded_message(command: str) -> str:
    # A resend after the ESTOP could be the pen's first sight of it and undo the E-stop (R01).
    return (
        f"{command} was not sent (again): an E-stop was sent after it was asked, and a "
        "request from before an E-stop never goes out after it (the pen may never have got "
        "it, and would run it in ESTOP). The E-stop stays latched; once it is safe, clear it "
        "with a new request (clear_faults)."
    )


class CommandRefused(SmpError):
    """The pen answered NACK."""

    def __init__(self, command: MsgType, reason: NackReason, detail: int = 0):
        self.command = command
        self.reason = reason
        self.detail = detail
        super().__init__(f"the pen refused {command.name}: {reason.name} ({reason.description})")


class RtoEstimator:
    """Round-trip-adaptive retransmission timeout (RFC 6298 constants)."""

    def __init__(self) -> None:
        self.srtt_s: float | None = None
        self.rttvar_s = 0.0
        self.last_rtt_s: float | None = None

    def sample(self, rtt_s: float) -> None:
        self.last_rtt_s = rtt_s
        if self.srtt_s is None:
            self.srtt_s, self.rttvar_s = rtt_s, rtt_s / 2
        else:
            self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - rtt_s)
            self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt_s

    @property
    def rto_s(self) -> float:
        if self.srtt_s is None:
            return RTO_INITIAL_S
        return min(RTO_MAX_S, max(RTO_MIN_S, self.srtt_s + 4 * self.rttvar_s))


@dataclass
class LinkStats:
    tx_frames: int = 0
    rx_frames: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    telemetry_received: int = 0
    telemetry_lost: int = 0
    last_telemetry_seq: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Waiter:
    """One reply slot; `done` once the reply is in or the link failed."""

    __slots__ = ("cond", "done", "reply")

    def __init__(self, cond: TimedCondition) -> None:
        self.cond = cond
        self.done = False
        self.reply: Message | None = None

    def finish(self, reply: Message | None) -> None:
        with self.cond:
            if not self.done:
                self.reply = reply
                self.done = True
                self.cond.notify_waiting()  # the E-stop's caller reads its reply itself


@dataclass
class Tracked:
    """A command whose reply the reader hands over directly (see `Link.track`)."""

    message: Message
    seq: int
    waiter: _Waiter
    link: LinkReading | None = None

    @property
    def replied(self) -> bool:
        return self.waiter.reply is not None

    def wait(self, timeout_s: float) -> bool:
        """True once the reply is in (or the link failed: check `replied`); clock time. Over
        a pty this thread reads the reply itself (`Link.wait`)."""
        waiter = self.waiter
        if self.link is not None:
            return self.link.wait(lambda: waiter.done, timeout_s, waiter.cond)
        with waiter.cond:
            return waiter.cond.wait_for(lambda: waiter.done, timeout_s)


class BytePort(Protocol):
    """What the link needs of a port: pyserial's `Serial` and `serial_for_url` ports fit."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class Link(LinkReading):
    """A framed, sequenced link over an open pyserial port."""

    def __init__(
        self,
        port: BytePort,
        *,
        on_lost: Callable[[BaseException], None] | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.port = port
        self.clock = clock
        self.now = now_function(clock)
        self.timebase = timebase_for(clock)
        self._replies = self.timebase.condition()  # reply slots (_Waiter) wait on it
        self.decoder = StreamDecoder()
        self.stats = LinkStats()
        self.rto = RtoEstimator()
        self.history: collections.deque[tuple[float, str, int, Message]] = collections.deque(
            maxlen=HISTORY_FRAMES
        )
        self.recent_telemetry: collections.deque[Telemetry] = collections.deque(maxlen=8)
        self.last_rx_s = clock.now()
        self._on_lost = on_lost
        self.messages: Notifier[[Message]] = Notifier("telemetry")  # TELEMETRY and EVENT
        self._reply_hook: Callable[[Frame], bool] | None = None
        # checked under the write lock before every frame: None lets it go, an error refuses it
        # (the controller's motion gate; stops change what it says under `holding_writes`)
        self.gate: Callable[[Message], SmpError | None] | None = None
        # run under the write lock right after an ESTOP's write: no frame goes out between
        # them, and the ESTOP does not wait for it (the controller's holds, `SafetyMixin`)
        self.estop_hold: Callable[[], None] | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._seq = 0
        self.seqs_drawn = 0  # every seq ever drawn (renewals, stops, E-stops): see `drawn_since`
        self.estops_written = 0  # ESTOP frames written (resends too), under the write lock
        self._seq_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closing = False  # set once, by close()
        self._lost: BaseException | None = None
        self._init_reading()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start reading: a reader thread, or on a virtual clock a pump run whenever the clock
        advances and after every write (all the pen said up to now is handled at once)."""
        if self.timebase.virtual:
            self.timebase.add_advance_hook(self._advanced)
        else:
            self._reader.start()

    def close(self, join: bool = True) -> None:
        """Close the port; wait (1 s at most) for the reader to end unless `join` is False
        (the controller loop never waits for the reader: review r10)."""
        self._closing = True
        self.timebase.remove_advance_hook(self._advanced)
        if self._lost is None:  # a closed link is down: sends fail clearly, nothing is lost twice
            self._lost = LinkError("the link was closed")
        with contextlib.suppress(Exception):  # a vanished port may fail to close; it is gone
            self.port.close()
        self._close_reading(join)

    @property
    def lost(self) -> BaseException | None:
        """The error that ended the link, or None while it is up."""
        return self._lost

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Callable[[Message], None]) -> None:
        """Called in the reader thread with every TELEMETRY and EVENT message."""
        self.messages.add(listener)

    def remove_listener(self, listener: Callable[[Message], None]) -> None:
        self.messages.remove(listener)

    def set_reply_hook(self, hook: Callable[[Frame], bool] | None) -> None:
        """The request engine's hook: every reply no tracked command waits for."""
        self._reply_hook = hook

    # ------------------------------------------------------------------ sending

    def next_seq(self) -> int:
        with self._seq_lock:
            return self.next_seq_locked()

    def next_seq_locked(self) -> int:
        """The next free seq; the caller holds `_seq_lock`."""
        self.seqs_drawn += 1
        for _ in range(255):
            self._seq = self._seq % 255 + 1  # 1..255; 0 is the pen's unsolicited seq
            if self._seq not in self._waiters:  # a tracked command still owns it (r14)
                return self._seq
        return self._seq  # every seq reserved: cannot happen with the one E-stop tracker

    def drawn_since(self, mark: int) -> int:
        """How many seqs were drawn after the one that left `seqs_drawn` at `mark`: an upper
        bound on the commands the pen put in its duplicate window since (protocol.md s5)."""
        return self.seqs_drawn - mark

    def send(self, message: Message, seq: int | None = None,
             estops_seen: int | None = None) -> int:
        """Write one frame now (no waiting). Returns its sequence number. `estops_seen`: the
        `estops_written` count when the request was asked; if an ESTOP was written since, a
        request other than a stop (NEEDLE_STOP, ESTOP) is refused with SupersededByEStop.
        Checked under the write lock, so no such frame ever follows the ESTOP on the wire.
        After an ESTOP's write, `estop_hold` runs under the same hold of the write lock."""
        if seq is None:
            seq = self.next_seq()
        data = encode(message, seq)
        if self._lost is not None:
            raise LinkError(f"the link to the pen is down ({self._lost}); reconnect first")
        try:
            with self._write_lock:
                gate = self.gate
                refused = gate(message) if gate is not None else None
                if refused is not None:
                    raise refused
                estop = isinstance(message, EStop)
                if estop:
                    self.estops_written += 1
                elif (estops_seen is not None and estops_seen != self.estops_written
                        and not isinstance(message, NeedleStop)):
                    raise SupersededByEStop(superseded_message(message.TYPE.name))
                try:
                    raw = self._raw
                    if raw is not None:
                        write_raw(raw, data)
                    else:
                        self.port.write(data)
                finally:  # written or not (a failed write, Ctrl-C): held before the lock goes
                    if estop and self.estop_hold is not None:
                        self.estop_hold()
        except (serial.SerialException, OSError) as exc:
            self._fail(exc)
            raise LinkError(f"cannot write to the pen: {exc}") from exc
        self.stats.tx_frames += 1
        self.history.append((self.now(), "tx", seq, message))
        if self.timebase.virtual:
            self.pump()  # the pen answers at once on virtual time: hand the reply over now
        return seq

    def holding_writes(self) -> threading.Lock:
        """`with link.holding_writes():` no frame is written meanwhile; a frame whose gate
        check passed before is already on the wire (a stop sets its holds under it)."""
        return self._write_lock

    def track(self, message: Message) -> Tracked:
        """Reserve a sequence number whose reply the reader thread delivers straight to the
        returned handle, whatever the other threads do (E-stop uses it). `untrack` when done."""
        with self._seq_lock:  # reserved before any other thread can draw this seq
            seq = self.next_seq_locked()
            waiter = _Waiter(self._replies)
            self._waiters[seq] = waiter
        return Tracked(message, seq, waiter, self)

    def untrack(self, tracked: Tracked) -> None:
        if self._waiters.get(tracked.seq) is tracked.waiter:  # not a later owner of the seq
            self._waiters.pop(tracked.seq, None)

    def tracking(self, tracked: Tracked) -> bool:
        """True while `tracked` still reserves its seq (not untracked)."""
        return self._waiters.get(tracked.seq) is tracked.waiter

    def max_command_time_s(self, attempts: int = MAX_ATTEMPTS) -> float:
        """Upper bound on how long a request can take before it fails."""
        return attempts * RTO_MAX_S

    # ------------------------------------------------------------------ receiving

    def _dispatch(self, frame: Frame) -> None:
        message = frame.message
        self.stats.rx_frames += 1
        if isinstance(message, Telemetry):
            self._count_telemetry(message.telemetry_seq)
            self.recent_telemetry.append(message)
        else:
            self.history.append((self.now(), "rx", frame.seq, message))
        if frame.seq == 0:  # unsolicited: TELEMETRY, EVENT
            self.messages.notify(message)  # a broken listener must not kill the link
            return
        waiter = self._waiters.get(frame.seq)
        if waiter is not None:
            waiter.finish(message)
            return
        hook = self._reply_hook
        if hook is not None:
            hook(frame)

    def _count_telemetry(self, seq: int) -> None:
        stats = self.stats
        last = stats.last_telemetry_seq
        if last is not None and seq > last + 1:
            stats.telemetry_lost += seq - last - 1
        stats.last_telemetry_seq = seq
        stats.telemetry_received += 1

    def _fail(self, exc: BaseException) -> None:
        if self._lost is not None:
            return
        self._lost = exc
        for waiter in list(self._waiters.values()):
            waiter.finish(None)
        self.interrupt()
        try:
            if self._on_lost is not None:
                self._on_lost(exc)
        finally:  # told after the waiters and the owner: a failing log never holds them up
            log.warning("link lost", error=str(exc))

    def format_history(self) -> list[str]:
        """The last frames in both directions, oldest first, for the log after a fault."""
        return format_frames(list(self.history))


def format_frames(history: list[tuple[float, str, int, Message]]) -> list[str]:
    """One line per frame of a history snapshot, times relative to the newest."""
    t_end = history[-1][0] if history else 0.0
    return [
        f"{t - t_end:+.3f}s {d} seq={seq} {type(m).__name__} {m.to_dict()}"
        for t, d, seq, m in history
    ]
