"""What the request engine carries: `Operation` (a request), the typed items of its loop's
queue (never tuples read by index), and `EngineHost`, what the engine asks of the controller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from firmware_protocol import Frame, Message
from firmware_protocol.messages import Nack
from smpdevice.errors import SmpError
from smpdevice.link.completion import Completion
from smpdevice.link.wire import MAX_ATTEMPTS, Tracked

_NONE_YET = cast(Completion, None)  # Operation.future before it has one


@dataclass(eq=False)
class Operation:
    """A request carried out by the engine: `steps` sent one after another, then `then()`."""

    steps: list[Message]
    then: Callable[[], Any] | None = None
    stop: bool = False  # a needle stop: the host treats its failure as a fault
    # asked (under the engine's lock) before each step is sent or resent: an error ends it
    # there (a calibration request whose turn comes after a stop was asked: the stop wins)
    check: Callable[[], SmpError | None] | None = None
    attempts: int = MAX_ATTEMPTS  # sends of each step before it fails (the first included)
    # its outcome: the caller's own when it comes through RequestEngine.call (which sets it),
    # else made when it is submitted: not one made per request only to be replaced
    future: Completion = _NONE_YET
    index: int = 0
    number: int = 0  # in the order of submission
    seq: int = 0
    drawn_mark: int = 0  # Link.seqs_drawn once its seq is drawn: a resend's window check
    estops_seen: int | None = None  # Link.estops_written when asked: none is sent past an ESTOP
    attempt: int = 0
    step_sent: bool = False  # the current step was written: a check refusing now is too late
    sent_at_s: float = 0.0
    deadline_s: float = 0.0

    @property
    def step(self) -> Message:
        return self.steps[self.index]


# ---- what the loop's queue carries (typed, never tuples read by index)


@dataclass(frozen=True, slots=True)
class Call:
    """A request queued behind earlier loop work (see `RequestEngine.call`)."""

    fn: Callable[..., Any]
    args: tuple
    future: Completion
    estops_seen: int | None = None  # Link.estops_written when it was asked


@dataclass(frozen=True, slots=True)
class Run:
    """Run in the loop thread, no answer (notifications, pen news, logging)."""

    fn: Callable[..., Any]
    args: tuple


@dataclass(frozen=True, slots=True)
class Reply:
    frame: Frame
    rx_no: int  # the link's count of frames received, this one included: its place in order


@dataclass(frozen=True, slots=True)
class Lost:
    error: BaseException


@dataclass(frozen=True, slots=True)
class ResendEStop:
    tracked: Tracked


@dataclass(frozen=True, slots=True)
class Wake:
    pass


class EngineHost(Protocol):
    """What the engine asks of the controller (all called in the loop thread)."""

    def lease_needed(self) -> bool: ...

    def motion_refused(self) -> SmpError | None: ...  # set once a stop is latched

    def nack_error(self, step: Message, nack: Nack) -> SmpError: ...

    def on_operation_timeout(self, op: Operation, error: SmpError) -> None: ...

    def on_tick(self, now_s: float) -> None: ...

    def on_lease_refused(self, nack: Nack) -> None: ...  # a LEASE_RENEW got a NACK

    def on_lost(self, reason: str, silence: bool = False) -> None: ...
