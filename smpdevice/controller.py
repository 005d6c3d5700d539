"""The controller: a state machine that drives the pen inside the safety envelope.

Threads and who owns what:
- the **loop thread** owns the state machine. Every public method posts a request to it and waits
  for the answer, so the controller is safe to call from several threads. The loop also renews
  the pen's dead-man lease, so a hung loop stops renewing and the pen stops the needle itself;
- the **reader thread** (in `Link`) decodes frames and hands replies, telemetry and events over;
- **E-stop** is the one exception: `estop()` writes the ESTOP frame from the caller's thread at
  once, bypassing every queue (grbl's real-time commands), then tells the loop.

Nothing resumes by itself: after a fault, an E-stop, a reboot of the pen or a reconnect the
controller is in `fault`, `estop` or `idle`, and the needle starts only on an explicit request.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from transitions import Machine

from firmware_protocol import PROTOCOL_VERSION, SCHEMA_HASH, Frame, Message, units
from firmware_protocol.codes import (
    Capability,
    EventCode,
    Fault,
    FirmwareState,
    LimitField,
    NackReason,
)
from firmware_protocol.messages import (
    Ack,
    Arm,
    CalibrationRead,
    CalibrationTable,
    CalibrationWrite,
    ClearFaults,
    Disarm,
    EStop,
    Event,
    Identify,
    IdentifyRequest,
    LeaseRenew,
    Nack,
    NeedleStart,
    NeedleStop,
    Retract,
    SetSetpoints,
    SetTelemetryRate,
    Telemetry,
)
from smpdevice import checks
from smpdevice.calibration import Calibration, CalibrationError, require_calibration
from smpdevice.envelope import (
    DEFAULT_ZONES,
    EnvelopeError,
    Violation,
    ZoneEnvelope,
    check_setpoints,
    narrowed,
)
from smpdevice.errors import SmpError
from smpdevice.link import (
    MAX_ATTEMPTS,
    RTO_MAX_S,
    CommandRefused,
    Link,
    LinkError,
    LinkTimeout,
    Tracked,
    format_frames,
    no_reply_message,
)
from smpdevice.logs import ensure_configured
from smpdevice.pen import PenIdentity, PenTelemetry, Setpoints
from smpdevice.transport import DEFAULT_PORT, open_port

log = structlog.get_logger("smpdevice.controller")

DEFAULT_LEASE_MS = 500
DEFAULT_TELEMETRY_HZ = 100
# The lease is renewed every quarter lease: shorter than this, scheduling jitter alone lapses it.
# The top is the protocol's (LEASE_RENEW.lease_ms is a u16); the pen may grant less.
LEASE_RANGE_MS = (50, 65535)
TELEMETRY_RANGE_HZ = (1, 65535)  # at least 1: telemetry is also how the host knows the pen is there
BAUD_RANGE = (50, 12_000_000)
_SETPOINT_UNITS = {"depth_mm": "mm", "speed_hz": "Hz", "duty_pct": "%", "period_ms": "ms"}
TIMEOUT_RANGE_S = (0.0, 60.0)  # waits for the actuator, the motor, a state
SETTLE_TOLERANCE_MM = 0.01
SILENCE_MARGIN_S = 0.025  # see _silence_limit_s


class State(StrEnum):
    """Controller states; the same names appear in the docs and the logs."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    ARMED = "armed"
    RUNNING = "running"
    CALIBRATING = "calibrating"
    FAULT = "fault"
    ESTOP = "estop"


_S = State
# (trigger, sources, destination). The machine refuses any other move.
TRANSITIONS: list[tuple[str, list[State] | str, State]] = [
    ("connect", [_S.DISCONNECTED], _S.CONNECTING),
    ("connected", [_S.CONNECTING], _S.IDLE),
    ("connected_faulted", [_S.CONNECTING], _S.FAULT),
    ("connected_estopped", [_S.CONNECTING], _S.ESTOP),
    ("connect_failed", [_S.CONNECTING], _S.DISCONNECTED),
    ("arm", [_S.IDLE], _S.ARMED),
    ("disarm", [_S.ARMED], _S.IDLE),
    ("start", [_S.ARMED], _S.RUNNING),
    ("stop", [_S.RUNNING], _S.ARMED),
    ("begin_calibration", [_S.IDLE], _S.CALIBRATING),
    ("end_calibration", [_S.CALIBRATING], _S.IDLE),
    ("fault_detected", [_S.IDLE, _S.ARMED, _S.RUNNING, _S.CALIBRATING], _S.FAULT),
    ("estop_latched", [_S.IDLE, _S.ARMED, _S.RUNNING, _S.CALIBRATING, _S.FAULT], _S.ESTOP),
    ("cleared", [_S.FAULT, _S.ESTOP], _S.IDLE),
    ("link_lost", [s for s in State if s is not _S.DISCONNECTED], _S.DISCONNECTED),
]

# Arm needs all three; the reason for each failed guard is given by `_arm_blockers`.
ARM_GUARDS = ["has_calibration", "has_zone", "has_setpoints"]


class StateError(SmpError):
    """The request is not allowed in the controller's current state."""


class HandshakeError(SmpError):
    """The pen on the port is not one this host can drive."""


class PenFault(SmpError):
    """The pen latched a fault or an E-stop while a request was in progress."""


class EStopUnconfirmed(LinkTimeout):
    """The E-stop is latched here and the lease is no longer renewed, but the pen has not
    confirmed it (yet): the pen stops the needle by itself when its lease runs out."""


# Messages that could move the needle or keep it moving: never sent once a stop is latched.
_MOTION = (LeaseRenew, Arm, NeedleStart, SetSetpoints)


@dataclass
class FaultInfo:
    """Why the controller entered `fault` or `estop`."""

    reason: str
    faults: Fault = field(default_factory=lambda: Fault(0))
    at_s: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        names = ", ".join(self.faults.names) if self.faults else ""
        return f"{self.reason}" + (f" ({names})" if names else "")


@dataclass
class _Op:
    """A request being carried out by the loop: messages sent one after another."""

    steps: list[Message]
    then: Callable[[], Any] | None
    future: Future
    stop: bool = False  # a needle stop: unconfirmed, it ends in fault (the lease stops the pen)
    index: int = 0
    seq: int = 0
    attempt: int = 0
    sent_at_s: float = 0.0
    deadline_s: float = 0.0


class _Fsm:
    """The model the `transitions` machine drives (kept apart from the public API)."""

    state: str

    def __init__(self, owner: PenController) -> None:
        self._owner = owner

    def has_calibration(self) -> bool:
        return not self._owner._arm_blockers(only="calibration")

    def has_zone(self) -> bool:
        return not self._owner._arm_blockers(only="zone")

    def has_setpoints(self) -> bool:
        return not self._owner._arm_blockers(only="setpoints")


def _acknowledged(tracked: Tracked) -> bool:
    return isinstance(tracked.waiter.reply, Ack)


def build_machine(model: Any) -> Machine:
    """The controller's state machine (also used to draw the diagram in the docs)."""
    machine = Machine(
        model=model,
        states=[s.value for s in State],
        initial=State.DISCONNECTED.value,
        auto_transitions=False,  # to_<state>() shortcuts would skip every guard
        ignore_invalid_triggers=False,
    )
    for trigger, sources, dest in TRANSITIONS:
        conditions = ARM_GUARDS if trigger == "arm" else None
        machine.add_transition(
            trigger, [s.value for s in sources], dest.value, conditions=conditions
        )
    return machine


class PenController:
    """Drive one pen. Use `PenController.connect(port)`, best as a context manager:

        with PenController.connect("pensim://", calibration=cal) as pen:
            pen.set_zone("crown")
            pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
            pen.arm()
            pen.start_needle()
            ...
            pen.stop_needle()
    """

    def __init__(
        self,
        port: str = DEFAULT_PORT,
        *,
        calibration: Calibration | None = None,
        zones: dict[str, ZoneEnvelope] | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        telemetry_hz: int = DEFAULT_TELEMETRY_HZ,
        baudrate: int = 115200,
    ) -> None:
        ensure_configured()
        # Checked before any port is opened or any frame is sent.
        checks.text("port", port, max_len=1024)
        checks.instance("calibration", calibration, (Calibration, type(None)),
                        "a Calibration or None")
        checks.instance("zones", zones, (dict, type(None)), "a dict of zone name to ZoneEnvelope")
        for name, zone in (zones or {}).items():
            checks.text("zone name", name, max_len=64)
            checks.instance(f"zones[{name!r}]", zone, ZoneEnvelope, "a ZoneEnvelope")
        checks.whole_number("lease_ms", lease_ms, *LEASE_RANGE_MS, unit="ms")
        checks.whole_number("telemetry_hz", telemetry_hz, *TELEMETRY_RANGE_HZ, unit="Hz")
        checks.whole_number("baudrate", baudrate, *BAUD_RANGE, unit="baud")
        self.port_url = port
        self.baudrate = baudrate
        self.lease_ms = lease_ms
        self.telemetry_hz = telemetry_hz
        self.zones = dict(zones or DEFAULT_ZONES)
        self._calibration = calibration
        self.identity: PenIdentity | None = None
        self.link: Link | None = None
        self.last_fault: FaultInfo | None = None
        self.telemetry: PenTelemetry | None = None
        self.zone_name: str | None = None
        self._zone: ZoneEnvelope | None = None
        self.setpoints: Setpoints | None = None
        self.running_since_s: float | None = None
        self._actuator_cmd_mm: float | None = None
        self._ops_done_s = 0.0
        self._telemetry_rate_hz = telemetry_hz
        self._fsm = _Fsm(self)
        self._machine = build_machine(self._fsm)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ops: list[_Op] = []  # FIFO: one request on the wire at a time
        self._telemetry_listeners: list[Callable[[PenTelemetry], None]] = []
        self._state_listeners: list[Callable[[State, State, str], None]] = []
        self._event_listeners: list[Callable[[Event], None]] = []
        self._loop_thread: threading.Thread | None = None
        self._next_lease_s = 0.0
        self._stop_loop = threading.Event()
        self._log = log
        # Safety stops act in the caller's thread, never waiting for the loop or the link:
        # the state changes under this lock, and the two holds below stop lease renewal at once.
        self._fsm_lock = threading.RLock()
        self._lease_hold = threading.Event()  # a stop is under way: renew nothing until it ends
        self._estop_hold = False  # an E-stop is latched here: renew nothing until cleared
        self._estop_tx: Tracked | None = None  # an unconfirmed ESTOP the loop keeps re-sending
        self._estop_due_s = 0.0

    # ================================================================== connection

    @classmethod
    def connect(cls, port: str = DEFAULT_PORT, **kwargs: Any) -> PenController:
        """Open `port`, run the handshake and return a controller in idle (or fault/estop)."""
        ctl = cls(port, **kwargs)
        ctl.open()
        return ctl

    def open(self) -> None:
        """Connect (from `disconnected`): open the port, handshake, settle the pen's state."""
        if self.state is not State.DISCONNECTED:
            raise StateError(f"already {self.state.value}; close() first")
        self._fire("connect", "open")
        self._fresh_queue()
        self._lease_hold.clear()
        self._estop_hold = False
        self._estop_tx = None
        try:
            self._open_link()
            settled = self._settle_pen()
        except BaseException:
            if self.link is not None:
                self.link.close()
            self._fire("connect_failed", "connection failed")
            raise
        self._fire(settled, "connected")  # before the loop exists: one thread at a time
        self._stop_loop.clear()
        self._loop_thread = threading.Thread(target=self._loop, name="smp-controller", daemon=True)
        self._loop_thread.start()

    def _fresh_queue(self) -> None:
        """A new connection starts with an empty queue: nothing from the old one may run."""
        old, self._queue = self._queue, queue.SimpleQueue()
        self._ops.clear()
        while not old.empty():
            item = old.get_nowait()
            if item[0] == "call" and not item[3].done():
                item[3].set_exception(LinkError("the connection this request was for is gone"))

    def reconnect(self) -> None:
        """After a lost link: connect to the same port again. The needle stays stopped."""
        if self.state is not State.DISCONNECTED:
            raise StateError(f"reconnect is for a lost link; the controller is {self.state.value}")
        self._shutdown_loop()
        previous = self.identity
        self.open()
        if previous is not None and self.identity and self.identity.serial != previous.serial:
            serial = self.identity.serial
            self.close()
            raise HandshakeError(
                f"a different pen ({serial}) answered on {self.port_url}; "
                f"expected {previous.serial}. Connect anew to use it."
            )

    def _open_link(self) -> None:
        port = open_port(self.port_url, baudrate=self.baudrate)
        self.telemetry = None
        self.link = link = Link(port, on_lost=self._on_link_lost)
        link.set_reply_hook(self._on_reply)
        link.add_listener(self._on_pen_message)
        link.start()
        reply = link.request(IdentifyRequest())
        if not isinstance(reply, Identify):
            raise HandshakeError(f"the pen answered IDENTIFY_REQUEST with {type(reply).__name__}")
        self._check_identity(reply)
        self.identity = PenIdentity.from_message(reply)
        self._log = log.bind(pen_serial=self.identity.serial, port=self.port_url)
        if self.lease_ms > self.identity.limits.lease_max_ms:
            self.lease_ms = self.identity.limits.lease_max_ms
        rate = min(self.telemetry_hz, self.identity.limits.telemetry_max_hz)
        self._request_after_boot(SetTelemetryRate(rate))
        self._telemetry_rate_hz = rate
        if self._zone is not None and self.zone_name is not None:
            self._zone = self._pen_bounded(self.zones[self.zone_name])
        self._log.info("connected", firmware=self.identity.firmware_version)

    def _request_after_boot(self, message: Message, wait_s: float = 3.0) -> Message:
        """A blocking request that waits out a pen still booting (NACK BOOTING)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.link.request(message)
            except CommandRefused as exc:
                if exc.reason is not NackReason.BOOTING or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _check_identity(self, m: Identify) -> None:
        problems = []
        if m.protocol_version != PROTOCOL_VERSION:
            problems.append(
                f"protocol version: pen {m.protocol_version}, host {PROTOCOL_VERSION}"
            )
        if m.schema_hash != SCHEMA_HASH:
            problems.append(
                f"message catalogue hash: pen 0x{m.schema_hash:08x}, host 0x{SCHEMA_HASH:08x}"
            )
        if problems:
            raise HandshakeError(
                f"pen {m.serial_str} (firmware {m.firmware_version}) speaks a different protocol: "
                + "; ".join(problems)
                + ". Update the host or the pen's firmware so both are built from the same "
                "catalogue."
            )

    def _settle_pen(self) -> str:
        """Wait for the first telemetry and bring the pen to a safe state; never resume."""
        link = self.link
        deadline = time.monotonic() + max(1.0, 20 / max(self.telemetry_hz, 1))
        while self.telemetry is None and time.monotonic() < deadline:
            time.sleep(0.005)
        t = self.telemetry
        if t is None:
            raise LinkTimeout("the pen sends no telemetry; check the cable and the pen")
        if t.state is FirmwareState.RUNNING:
            link.request(NeedleStop())
            link.request(Disarm())
        elif t.state is FirmwareState.ARMED:
            link.request(Disarm())
        self._ops_done_s = time.monotonic()  # telemetry from before these is stale
        if t.state is FirmwareState.FAULT or t.faults:
            self.last_fault = FaultInfo("pen reports a latched fault", t.faults)
            return "connected_faulted"
        if t.state is FirmwareState.ESTOP:
            self.last_fault = FaultInfo("pen reports a latched E-stop", t.faults)
            return "connected_estopped"
        return "connected"

    def close(self) -> None:
        """Stop the needle if it runs, disarm, and close the port. Safe to call twice."""
        self._lease_hold.set()  # even if nothing below gets through, the pen stops by itself
        if self.link is not None and self.link.lost is None:
            for message in (NeedleStop(), Disarm()):
                try:
                    self.link.request(message, attempts=2)
                except SmpError:
                    break
        self._shutdown_loop()
        if self.link is not None:
            self.link.close()
        if self.state is not State.DISCONNECTED:
            self._fire("link_lost", "closed")

    def __enter__(self) -> PenController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shutdown_loop(self) -> None:
        self._stop_loop.set()
        self._queue.put(("wake",))
        thread = self._loop_thread
        if thread and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._loop_thread = None

    # ================================================================== public API

    @property
    def state(self) -> State:
        return State(self._fsm.state)

    @property
    def simulated(self) -> bool:
        """True when this is no real pen: a `pensim://` port, or a pen whose IDENTIFY says
        SIMULATED (a simulator over a pty or TCP). Records made with it carry the flag."""
        if self.port_url.strip().lower().startswith("pensim://"):
            return True
        return (self.identity is not None
                and Capability.SIMULATED in self.identity.capabilities)

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    @property
    def zone(self) -> ZoneEnvelope | None:
        """The active zone's envelope, narrowed to the pen's limits."""
        return self._zone

    def add_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        """Called (in the reader thread) with every telemetry frame in physical units."""
        self._telemetry_listeners.append(listener)

    def remove_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        if listener in self._telemetry_listeners:
            self._telemetry_listeners.remove(listener)

    def add_state_listener(self, listener: Callable[[State, State, str], None]) -> None:
        """Called with (old state, new state, reason) after every state change."""
        self._state_listeners.append(listener)

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        """Called with every EVENT the pen reports."""
        self._event_listeners.append(listener)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Use `calibration` from now on (idle only). None or another pen's is refused."""
        checks.instance("calibration", calibration, (Calibration, type(None)),
                        "a Calibration")
        self._call(self._do_set_calibration, calibration)

    def set_zone(self, zone: str) -> ZoneEnvelope:
        """Select the zone whose envelope every setpoint is checked against (not while running)."""
        checks.text("zone", zone, max_len=64)
        return self._call(self._do_set_zone, zone)

    def set_setpoints(
        self, *, depth_mm: float, speed_hz: float, duty_pct: float, period_ms: float
    ) -> Setpoints:
        """Check against the zone's envelope, convert through the calibration, send."""
        setpoints = Setpoints(*(self._setpoint_number(name, value) for name, value in (
            ("depth_mm", depth_mm), ("speed_hz", speed_hz), ("duty_pct", duty_pct),
            ("period_ms", period_ms))))
        return self._call(self._do_set_setpoints, setpoints)

    def _setpoint_number(self, name: str, value: object) -> float:
        """Type and finiteness, within what the pen can do; the zone's envelope narrows it."""
        if checks.is_finite_real(value):
            return float(value)  # the range is the envelope's to judge (EnvelopeError)
        lo, hi = -math.inf, math.inf
        if self.identity is not None:
            lo, hi = self.pen_limits().get(name, (lo, hi))
        return checks.finite_number(name, value, lo, hi, unit=_SETPOINT_UNITS[name])

    def arm(self) -> None:
        """idle -> armed. Needs a valid calibration, a zone and setpoints."""
        self._call(self._do_arm)

    def disarm(self) -> None:
        self._call(self._do_simple, "disarm", [Disarm()])

    def start_needle(self, *, settle_timeout_s: float = 1.0) -> None:
        """armed -> running (a pass begins), once the needle stands at the set depth.

        Starting while the depth actuator still travels would put the first dots too shallow
        or too deep, so this waits (up to `settle_timeout_s`) for the measured depth to reach
        the command first.
        """
        checks.finite_number("settle_timeout_s", settle_timeout_s, *TIMEOUT_RANGE_S, unit="s",
                             lo_open=True)
        if self.state is State.ARMED:
            if self.setpoints is None:
                raise StateError("no setpoints since the last retract, fault or calibration: "
                                 "call set_setpoints() first")
            self._wait_depth_settled(settle_timeout_s)
        self._call(self._do_start)

    def _wait_depth_settled(self, timeout_s: float) -> None:
        target_mm = self._actuator_cmd_mm
        deadline = time.monotonic() + timeout_s
        while True:
            t = self.telemetry
            if (
                t is not None
                and target_mm is not None
                and abs(t.actuator_cmd_mm - target_mm) < 0.0005  # the pen has the command
                and abs(t.actuator_mm - target_mm) <= SETTLE_TOLERANCE_MM
            ):
                return
            self._raise_if_faulted()
            if time.monotonic() > deadline:
                where = f"{t.actuator_mm:.3f} mm" if t else "unknown"
                raise SmpError(
                    f"the depth actuator did not reach {target_mm} mm within {timeout_s} s "
                    f"(it is at {where}); the needle was not started. Check the pen."
                )
            time.sleep(0.002)

    def stop_needle(self) -> None:
        """running -> armed (the pass ends).

        The stop never depends on the link: lease renewal stops at once and resumes only when
        the pen confirms the stop. If it never does, the controller goes to `fault` and the
        pen stops the needle by itself when its lease runs out.
        """
        if self.state in (State.RUNNING, State.ARMED):
            self._lease_hold.set()
        try:
            self._call(self._do_stop)
        except LinkError as exc:
            self._latch_locally("fault_detected", self._unconfirmed_stop_reason(exc))
            raise

    def _unconfirmed_stop_reason(self, exc: BaseException) -> str:
        return (f"the pen did not confirm the needle stop ({exc}); the host stopped renewing "
                f"the lease, so the pen stops the needle by itself within {self.lease_ms} ms")

    def retract(self) -> None:
        """Stop the needle and pull it back to actuator 0."""
        self._call(self._do_retract)

    def clear_faults(self) -> None:
        """fault/estop -> idle, once the cause is gone. A technician's explicit act."""
        self._call(self._do_clear)

    def estop(self) -> None:
        """Emergency stop, from any state and any thread; latches until clear_faults().

        It never waits for the link: lease renewal stops at once, the ESTOP frame is written at
        once from this thread (bypassing every queue) and the controller enters `estop` at once.
        Then it waits for the pen's confirmation, re-sending ESTOP. Unconfirmed, it raises
        EStopUnconfirmed and the loop keeps re-sending until confirmed or the link is lost;
        the pen stops the needle by itself within one lease either way.
        """
        self._lease_hold.set()
        self._estop_hold = True
        link = self.link
        tracked: Tracked | None = None
        if link is not None and link.lost is None:
            tracked = link.track(EStop())
            try:
                link.send(EStop(), tracked.seq)
            except SmpError:
                link.untrack(tracked)
                tracked = None
        self._latch_locally("estop_latched", "E-stop requested by the host")
        by_itself = (f"the host renews nothing, so the pen stops the needle by itself when its "
                     f"lease runs out (within {self.lease_ms} ms)")
        if tracked is None:
            raise EStopUnconfirmed(
                f"E-stop not confirmed: the link to the pen is down. The controller is "
                f"{self.state.value} and {by_itself}. Reconnect to check the pen."
            )
        if self._await_estop(link, tracked):
            link.untrack(tracked)
            return
        self._queue.put(("estop_resend", tracked))
        raise EStopUnconfirmed(
            f"E-stop not confirmed by the pen after {MAX_ATTEMPTS} tries (it is still re-sent). "
            f"The controller is {self.state.value} and {by_itself}. Check the cable."
        )

    def _await_estop(self, link: Link, tracked: Tracked) -> bool:
        """Re-send ESTOP (same seq) until the pen acknowledges it; False if it never does."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                try:
                    link.send(EStop(), tracked.seq)
                except SmpError:
                    return False
                link.stats.retransmissions += 1
            if tracked.wait(min(RTO_MAX_S, link.rto.rto_s * 2**attempt)):
                return _acknowledged(tracked)
        return False

    def _latch_locally(self, trigger: str, reason: str) -> None:
        """Enter estop/fault now, from any thread; the loop fails what was pending and logs."""
        with self._fsm_lock:
            if self.state in (State.DISCONNECTED, State.CONNECTING):
                return
            if self.state is State.ESTOP or (trigger == "fault_detected"
                                             and self.state is State.FAULT):
                return
            self.last_fault = FaultInfo(reason)
            self.running_since_s = None
            self._forget_setpoints()
            self._fire(trigger, reason)
        self._queue.put(("safe",))

    def wait_for_state(self, *states: State, timeout_s: float = 2.0) -> State:
        """Wait until the controller is in one of `states` (for scripts and tests)."""
        checks.finite_number("timeout_s", timeout_s, 0.0, 86400.0, unit="s", lo_open=True)
        for state in states:
            checks.instance("state", state, State, "a State")
        deadline = time.monotonic() + timeout_s
        while self.state not in states:
            if time.monotonic() > deadline:
                raise SmpError(
                    f"waited {timeout_s} s for {', '.join(s.value for s in states)}; "
                    f"still {self.state.value}"
                )
            time.sleep(0.002)
        return self.state

    # ---- calibration (state `calibrating`; hard limits only, the needle is off the skin)

    def begin_calibration(self) -> None:
        self._call(self._do_begin_calibration)

    def calibration_move(self, actuator_mm: float, *, settle_timeout_s: float = 2.0) -> float:
        """Drive the actuator to `actuator_mm`, wait until it settles, return the measured mm."""
        lo, hi = self._travel_mm()
        checks.finite_number("actuator_mm", actuator_mm, lo, hi, unit="mm (actuator travel)")
        checks.finite_number("settle_timeout_s", settle_timeout_s, *TIMEOUT_RANGE_S, unit="s",
                             lo_open=True)
        self._call(self._do_calibration_move, actuator_mm)
        deadline = time.monotonic() + settle_timeout_s
        while time.monotonic() < deadline:
            t = self.telemetry
            if t and abs(t.actuator_mm - actuator_mm) <= SETTLE_TOLERANCE_MM:
                # one more frame so the reading is taken after the move ended
                seq = t.telemetry_seq
                while self.telemetry and self.telemetry.telemetry_seq == seq:
                    time.sleep(0.001)
                return self.telemetry.actuator_mm
            self._raise_if_faulted()
            time.sleep(0.002)
        raise SmpError(f"the actuator did not settle at {actuator_mm} mm in {settle_timeout_s} s")

    def calibration_spin(self, speed_hz: float, duration_s: float = 1.0) -> float:
        """Run the motor (off skin) at `speed_hz`, return the mean encoder speed after settling."""
        lim = self.identity.limits if self.identity is not None else None
        checks.finite_number("speed_hz", speed_hz, lim.speed_min_hz if lim else 0.0,
                             lim.speed_max_hz if lim else 1e4, unit="Hz")
        checks.finite_number("duration_s", duration_s, *TIMEOUT_RANGE_S, unit="s", lo_open=True)
        self._call(self._do_calibration_spin, speed_hz, True)
        samples: list[float] = []

        def collect(t: PenTelemetry) -> None:
            samples.append(t.speed_hz)

        try:
            time.sleep(min(0.3, duration_s / 2))  # let the motor reach speed
            self._raise_if_faulted()
            self.add_telemetry_listener(collect)
            time.sleep(duration_s)
            self._raise_if_faulted()
        finally:
            self.remove_telemetry_listener(collect)
            if self.state is State.CALIBRATING:
                self._call(self._do_calibration_spin, speed_hz, False)
        if not samples:
            raise LinkTimeout("no telemetry while the motor ran")
        return sum(samples) / len(samples)

    def end_calibration(self, calibration: Calibration | None = None) -> None:
        """Back to idle; install `calibration` and store it on the pen where supported."""
        checks.instance("calibration", calibration, (Calibration, type(None)),
                        "a Calibration or None")
        self._call(self._do_end_calibration, calibration)

    def _travel_mm(self) -> tuple[float, float]:
        if self.identity is None:
            return (0.0, 1e3)
        return (self.identity.limits.depth_min_mm, self.identity.limits.depth_max_mm)

    def read_calibration_table(self) -> CalibrationTable:
        return self._call(self._do_request, CalibrationRead())

    # ================================================================== loop-side work

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in the loop thread and wait for its result (or error)."""
        if self._loop_thread is None or not self._loop_thread.is_alive():
            if self.state is State.DISCONNECTED:
                reason = f": {self.link.lost}" if self.link and self.link.lost else ""
                raise StateError(f"not connected to a pen{reason}. Connect or reconnect first.")
            raise StateError("the controller loop is not running")
        if threading.current_thread() is self._loop_thread:
            raise StateError(
                "controller methods cannot be called from a listener (it runs in the "
                "controller's own thread); hand the work to another thread"
            )
        future: Future = Future()
        self._queue.put(("call", fn, args, future))
        limit = self.link.max_command_time_s() * 3 + 2.0 if self.link else 5.0
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()  # if it has not started, it never will
            raise LinkTimeout(f"no answer within {limit:.1f} s") from None

    def _loop(self) -> None:
        while not self._stop_loop.is_set():
            try:
                item = self._queue.get(timeout=self._loop_timeout())
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                self._timers()
            except Exception:  # the loop must survive anything a request throws at it
                self._log.exception("controller loop error")

    def _loop_timeout(self) -> float:
        now = time.monotonic()
        due = self._next_lease_s if self._lease_needed() else now + 0.05
        if self._ops:
            due = min(due, self._ops[0].deadline_s)
        if self._estop_tx is not None:
            due = min(due, self._estop_due_s)
        if self.link is not None and self.state not in (State.DISCONNECTED, State.CONNECTING):
            # wake at the silence deadline, not up to one 50 ms tick after it
            due = min(due, self.link.last_rx_s + self._silence_limit_s())
        return max(0.0, min(due - now, 0.05))

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "call":
            _, fn, args, future = item
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
                return
            if isinstance(result, _Op):
                result.future = future
                self._ops.append(result)
                if len(self._ops) == 1:
                    self._send_step(result)
            else:
                future.set_result(result)
        elif kind == "reply":
            self._on_op_reply(item[1])
        elif kind == "pen":
            self._on_pen_state(item[1])
        elif kind == "lost":
            self._lost(str(item[1]))
        elif kind == "safe":
            self._after_safe()
        elif kind == "notify":
            self._notify_state(*item[1:])
        elif kind == "estop_resend":
            self._estop_tx = item[1]
            self._estop_due_s = time.monotonic() + RTO_MAX_S
        elif kind == "log_fault":
            _, reason, history = item
            time.sleep(0.001)  # let the thread waiting for the stop run before we format
            self._log.warning("fault", reason=reason, last_frames=format_frames(history))

    def _op(self, steps: list[Message], then: Callable[[], Any] | None = None) -> _Op:
        return _Op(steps=steps, then=then, future=Future())

    def _send_step(self, op: _Op) -> None:
        op.attempt = 0
        if self._stop_latched() and isinstance(op.steps[op.index], _MOTION):
            self._finish_op(op, PenFault(f"stopped: {self.last_fault}"))
            return
        try:
            op.seq = self.link.send(op.steps[op.index])
        except SmpError as exc:
            self._finish_op(op, exc)
            return
        op.sent_at_s = time.monotonic()
        op.deadline_s = op.sent_at_s + self.link.rto.rto_s

    def _on_op_reply(self, frame: Frame) -> None:
        if not self._ops or frame.seq != self._ops[0].seq:
            return  # a lease renewal's ACK, or a late duplicate
        op = self._ops[0]
        if op.attempt == 0:
            self.link.rto.sample(time.monotonic() - op.sent_at_s)
        message = frame.message
        if isinstance(message, Nack):
            step = op.steps[op.index]
            self._finish_op(op, self._nack_error(step, message))
            return
        op.index += 1
        if op.index < len(op.steps):
            self._send_step(op)
            return
        try:
            result = op.then() if op.then else message
        except BaseException as exc:
            self._finish_op(op, exc)
            return
        self._finish_op(op, None, message if result is None else result)

    def _finish_op(self, op: _Op, error: BaseException | None, result: Any = None) -> None:
        if self._ops and self._ops[0] is op:
            self._ops.pop(0)
        self._ops_done_s = time.monotonic()  # telemetry older than this may predate the op
        if error is not None:
            op.future.set_exception(error)
        else:
            op.future.set_result(result)
        if self._ops:
            self._send_step(self._ops[0])

    def _timers(self) -> None:
        now = time.monotonic()
        if self._ops:
            op = self._ops[0]
            if now >= op.deadline_s:
                if op.attempt + 1 >= MAX_ATTEMPTS:
                    self.link.stats.timeouts += 1
                    name = op.steps[op.index].TYPE.name
                    if any(isinstance(m, NeedleStart) for m in op.steps):
                        # it may have started with only the replies lost: stop it to be sure
                        with contextlib.suppress(SmpError):
                            self.link.send(NeedleStop())
                    error = LinkTimeout(no_reply_message(name, MAX_ATTEMPTS))
                    self._finish_op(op, error)
                    if op.stop and self.state in (State.RUNNING, State.ARMED):
                        # an unconfirmed stop: renew nothing more, so the pen stops by itself
                        self.last_fault = FaultInfo(self._unconfirmed_stop_reason(error))
                        self._enter_safe("fault_detected")
                elif self._stop_latched() and isinstance(op.steps[op.index], _MOTION):
                    self._finish_op(op, PenFault(f"stopped: {self.last_fault}"))
                else:
                    op.attempt += 1
                    self.link.stats.retransmissions += 1
                    try:
                        self.link.send(op.steps[op.index], op.seq)  # same seq: the pen dedups
                    except SmpError as exc:
                        self._finish_op(op, exc)
                        return
                    backoff_s = self.link.rto.rto_s * (2 ** op.attempt)
                    op.deadline_s = now + min(backoff_s, RTO_MAX_S)
        if self._lease_needed() and now >= self._next_lease_s:
            self._renew_lease()
        if self._estop_tx is not None:
            self._resend_estop(now)
        if (
            self.state is State.RUNNING
            and self._zone is not None
            and self.running_since_s
            and now - self.running_since_s > self._zone.max_pass_s
            and not self._ops
        ):
            self._log.warning("pass time limit reached; stopping", limit_s=self._zone.max_pass_s)
            self._ops.append(self._do_stop())
            self._send_step(self._ops[0])
        t = self.telemetry
        if t is not None and not self._ops and t.received_at_s > self._ops_done_s:
            self._on_pen_state(t)
        if self.link is not None and self.state not in (State.DISCONNECTED, State.CONNECTING):
            silent_s = now - self.link.last_rx_s
            if silent_s > self._silence_limit_s():
                self._lost(f"the pen has been silent for {silent_s:.2f} s")

    def _silence_limit_s(self) -> float:
        # Link loss is reported within two lease periods of the last byte received, less a
        # margin for the loop's wake-up and the reader's latency (bench/faults.py disconnects).
        # With slow telemetry, allow three telemetry periods of silence.
        limit = max(2 * self.lease_ms / 1000, 3 / self._telemetry_rate_hz) - SILENCE_MARGIN_S
        return max(limit, 0.25)

    def _lease_needed(self) -> bool:
        return (self.state in (State.ARMED, State.RUNNING, State.CALIBRATING)
                and not self._lease_hold.is_set() and not self._estop_hold)

    def _stop_latched(self) -> bool:
        return self._estop_hold or self.state in (State.ESTOP, State.FAULT)

    def _resend_estop(self, now: float) -> None:
        """Keep re-sending an unconfirmed ESTOP until the pen confirms it or the link is lost."""
        tracked, link = self._estop_tx, self.link
        if link is None or link.lost is not None:
            self._estop_tx = None
            return
        if tracked.replied:
            link.untrack(tracked)
            if _acknowledged(tracked):
                self._estop_tx = None
                self._log.warning("E-stop confirmed by the pen (late)")
                return
            self._estop_tx = tracked = link.track(EStop())  # refused (booting?): a fresh one
        if now >= self._estop_due_s:
            self._estop_due_s = now + RTO_MAX_S
            with contextlib.suppress(SmpError):  # a write failure is the link-lost path's
                link.send(EStop(), tracked.seq)
                link.stats.retransmissions += 1

    def _renew_lease(self) -> None:
        if not self._lease_needed():
            return
        try:
            self.link.send(LeaseRenew(self.lease_ms))
        except SmpError:
            return  # the link-lost path takes over
        self._next_lease_s = time.monotonic() + self.lease_ms / 4000

    # ---- pen-side news

    def _on_reply(self, frame: Frame) -> bool:
        self._queue.put(("reply", frame))
        return True

    def _on_pen_message(self, message: Message) -> None:
        """Reader thread: telemetry fan-out, and state news for the loop."""
        if isinstance(message, Telemetry):
            t = PenTelemetry.from_message(message, self._calibration)
            previous = self.telemetry
            self.telemetry = t
            for listener in list(self._telemetry_listeners):
                try:
                    listener(t)
                except Exception:
                    self._log.exception("telemetry listener failed")
            rebooted = previous is not None and t.telemetry_seq < previous.telemetry_seq
            if (
                previous is None
                or rebooted
                or t.state is not previous.state
                or t.faults != previous.faults
            ):
                self._queue.put(("pen", t))
        elif isinstance(message, Event):
            for listener in list(self._event_listeners):
                try:
                    listener(message)
                except Exception:
                    self._log.exception("event listener failed")
            self._log.info("pen event", pen_event=EventCode(message.event).name,
                           pen_state=FirmwareState(message.state).name,
                           faults=Fault(message.faults).names)

    def _on_pen_state(self, t: PenTelemetry) -> None:
        """Bring the controller in line with what the pen reports (loop thread)."""
        state = self.state
        if state in (State.DISCONNECTED, State.CONNECTING):
            return
        settled = not self._ops and t.received_at_s > self._ops_done_s
        if (
            t.state is FirmwareState.RUNNING
            and state not in (State.RUNNING, State.CALIBRATING)
            and settled
        ):
            # The pen runs a needle nobody here started (e.g. a start whose replies were all
            # lost): stop it now, and make a person look before anything else runs.
            with contextlib.suppress(SmpError):
                self.link.send(NeedleStop())
            if state not in (State.FAULT, State.ESTOP):
                self.last_fault = FaultInfo("the pen ran the needle without a confirmed start; "
                                            "stopped it")
                self._enter_safe("fault_detected")
            return
        if t.state is FirmwareState.ESTOP and state is not State.ESTOP:
            self.last_fault = FaultInfo("the pen latched an E-stop", t.faults)
            self._enter_safe("estop_latched")
        elif (t.state is FirmwareState.FAULT or t.faults) and state not in (
            State.FAULT, State.ESTOP
        ):
            self.last_fault = FaultInfo("the pen latched a fault", t.faults)
            self._enter_safe("fault_detected")
        elif state is State.RUNNING and t.state is not FirmwareState.RUNNING and settled:
            self.last_fault = FaultInfo(f"the needle stopped unexpectedly (pen {t.state.name})")
            self._enter_safe("fault_detected")
        elif state is State.ARMED and t.state is FirmwareState.IDLE and settled:
            self.last_fault = FaultInfo("the pen left armed by itself (lease lapsed?)")
            self._enter_safe("fault_detected")

    def _forget_setpoints(self) -> None:
        """The pen forgets its setpoints whenever it retracts (fault, E-stop, reboot, lease)."""
        self.setpoints = None
        self._actuator_cmd_mm = None

    def _enter_safe(self, trigger: str) -> None:
        self.running_since_s = None
        self._forget_setpoints()
        with self._fsm_lock:
            if self.state is State.ESTOP:
                return  # latched from another thread meanwhile; its "safe" item follows
            self._fire(trigger, str(self.last_fault))
        self._after_safe()

    def _after_safe(self) -> None:
        """Loop side of entering fault/estop: fail what was pending, log the last frames."""
        for op in list(self._ops):
            self._ops.remove(op)
            op.future.set_exception(PenFault(f"stopped: {self.last_fault}"))
        # Formatting the frame history costs more than the stop itself: snapshot it now, log it
        # on the loop's next turn, after whoever waits for the stop has been answered.
        if self.link is not None:
            self._queue.put(("log_fault", str(self.last_fault), list(self.link.history)))

    def _on_link_lost(self, exc: BaseException) -> None:
        self._queue.put(("lost", exc))

    def _lost(self, reason: str) -> None:
        if self.state is State.DISCONNECTED:
            return
        self.running_since_s = None
        self._forget_setpoints()
        self.last_fault = FaultInfo(f"link lost: {reason}")
        if self.link is not None:
            history = self.link.format_history()
            self.link.close()
        else:
            history = []
        self._fire("link_lost", reason)
        self._log.warning("link lost", reason=reason, last_frames=history)
        for op in list(self._ops):
            self._ops.remove(op)
            op.future.set_exception(LinkError(f"link lost: {reason}"))
        self._estop_tx = None
        self._stop_loop.set()

    def _raise_if_faulted(self) -> None:
        if self.state in (State.FAULT, State.ESTOP, State.DISCONNECTED):
            raise PenFault(f"the controller is {self.state.value}: {self.last_fault}")

    # ---- requests, each run in the loop thread

    def _require(self, *states: State, action: str) -> None:
        if self.state not in states:
            allowed = " or ".join(s.value for s in states)
            hint = ""
            if self.state in (State.FAULT, State.ESTOP):
                hint = f" ({self.last_fault}); clear it with clear_faults() / `smp clear`"
            raise StateError(f"cannot {action} while {self.state.value}{hint}; needs {allowed}")

    def _do_set_calibration(self, calibration: Calibration | None) -> None:
        self._require(State.IDLE, State.CALIBRATING, action="change the calibration")
        require_calibration(calibration, self.identity.serial)  # None: says how to make one
        self._calibration = calibration
        self._forget_setpoints()  # actuator commands from the old calibration are stale
        if self.zone_name is not None:  # the depth window depends on the calibration
            self._zone = self._pen_bounded(self.zones[self.zone_name])

    def pen_limits(self) -> dict[str, tuple[float, float]]:
        """What this pen can do, in setpoint units: depth in skin (through the calibration,
        when there is one), speed, duty and period. The envelope is narrowed to these."""
        lim = self.identity.limits
        bounds: dict[str, tuple[float, float]] = {
            "speed_hz": (lim.speed_min_hz, lim.speed_max_hz),
            "duty_pct": (lim.duty_min_pct, lim.duty_max_pct),
            "period_ms": (lim.period_min_ms, lim.period_max_ms),
        }
        if self._calibration is not None:
            a, b = (self._calibration.to_depth_mm(lim.depth_min_mm),
                    self._calibration.to_depth_mm(lim.depth_max_mm))
            bounds["depth_mm"] = (min(a, b), max(a, b))
        return bounds

    def _pen_bounded(self, zone: ZoneEnvelope) -> ZoneEnvelope:
        """The zone narrowed to what the pen can do."""
        return narrowed(zone, **self.pen_limits())

    def _do_set_zone(self, name: str) -> ZoneEnvelope:
        self._require(State.IDLE, State.ARMED, action="change zone")
        if name not in self.zones:
            raise EnvelopeError(name, [Violation("zone", 0, 0, f"is unknown; known zones: "
                                                 f"{', '.join(sorted(self.zones))};")])
        zone = self._pen_bounded(self.zones[name])
        if self.setpoints is not None:
            sp = self.setpoints
            violations = check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                         duty_pct=sp.duty_pct, period_ms=sp.period_ms)
            if violations and self.state is State.ARMED:
                raise EnvelopeError(name, violations)
            if violations:
                self.setpoints = None
        self.zone_name, self._zone = name, zone
        self._log = self._log.bind(zone=name)
        return zone

    def _do_set_setpoints(self, sp: Setpoints) -> _Op:
        self._require(State.IDLE, State.ARMED, State.RUNNING, action="change setpoints")
        if self._zone is None:
            raise StateError("choose a zone first (set_zone); its envelope limits every setpoint")
        calibration = require_calibration(self._calibration, self.identity.serial)
        violations = check_setpoints(self._zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                     duty_pct=sp.duty_pct, period_ms=sp.period_ms)
        if violations:
            raise EnvelopeError(self.zone_name, violations)
        message = SetSetpoints(
            depth_um=units.mm_to_um(calibration.to_actuator_mm(sp.depth_mm)),
            speed_centihz=units.hz_to_centihz(sp.speed_hz),
            duty_permille=units.pct_to_permille(sp.duty_pct),
            period_us=units.ms_to_us(sp.period_ms),
        )

        def done() -> Setpoints:
            self.setpoints = sp
            self._actuator_cmd_mm = message.depth_um / 1000
            self._log.info("setpoints", **sp.__dict__)
            return sp

        return self._op([message], done)

    def _arm_blockers(self, only: str | None = None) -> list[str]:
        """Why arming is not allowed now (empty if it is)."""
        out: list[str] = []
        if only in (None, "calibration"):
            try:
                require_calibration(self._calibration, self.identity.serial)
            except CalibrationError as exc:
                out.append(str(exc))
        if only in (None, "zone") and self._zone is None:
            out.append("no zone chosen: call set_zone() first")
        if only in (None, "setpoints") and self.setpoints is None:
            out.append("no setpoints: call set_setpoints() first")
        return out

    def _do_arm(self) -> _Op:
        self._require(State.IDLE, action="arm")
        blockers = self._arm_blockers()
        if blockers or not self._fsm.may_arm():
            raise StateError("cannot arm: " + "; ".join(blockers))
        self._next_lease_s = 0.0
        self._lease_hold.clear()  # a new, explicit grant of the lease
        return self._op([LeaseRenew(self.lease_ms), Arm()], lambda: self._fire("arm", "armed"))

    def _do_start(self) -> _Op:
        self._require(State.ARMED, action="start the needle")

        def started() -> None:
            self.running_since_s = time.monotonic()
            self._fire("start", "needle started")

        return self._op([LeaseRenew(self.lease_ms), NeedleStart()], started)

    def _do_stop(self) -> _Op:
        # Accepted in armed too: a stop queued behind a start (Ctrl-C while starting) must
        # still stop the needle that start is about to run.
        self._require(State.RUNNING, State.ARMED, action="stop the needle")
        self._lease_hold.set()  # renew nothing until the pen confirms the stop

        def stopped() -> None:
            self.running_since_s = None
            with self._fsm_lock:
                if self.state is State.RUNNING:
                    self._fire("stop", "needle stopped")
                if self.state is State.ARMED:
                    self._lease_hold.clear()  # armed needs a live lease again

        op = self._op([NeedleStop()], stopped)
        op.stop = True
        return op

    def _do_retract(self) -> _Op:
        self._require(State.IDLE, State.ARMED, State.RUNNING, State.CALIBRATING,
                      State.FAULT, State.ESTOP, action="retract")

        def retracted() -> None:
            self._forget_setpoints()
            if self.state is State.RUNNING:
                self.running_since_s = None
                self._fire("stop", "retracted")

        return self._op([Retract()], retracted)

    def _do_simple(self, trigger: str, steps: list[Message]) -> _Op:
        if not getattr(self._fsm, f"may_{trigger}")():
            raise StateError(f"cannot {trigger} while {self.state.value}")
        return self._op(steps, lambda: self._fire(trigger, trigger))

    def _do_clear(self) -> _Op:
        self._require(State.FAULT, State.ESTOP, action="clear faults")

        def cleared() -> None:
            self._log.info("faults cleared", previous=str(self.last_fault))
            self.last_fault = None
            self._fire("cleared", "cleared by request")
            self._estop_hold = False  # the technician's explicit reset ends the E-stop
            if self._estop_tx is not None and self.link is not None:
                self.link.untrack(self._estop_tx)
            self._estop_tx = None

        return self._op([ClearFaults()], cleared)

    def _do_begin_calibration(self) -> None:
        self._require(State.IDLE, action="begin calibration")
        self._fire("begin_calibration", "calibration")

    def _check_actuator(self, actuator_mm: float) -> None:
        lim = self.identity.limits
        if not lim.depth_min_mm <= actuator_mm <= lim.depth_max_mm:
            raise EnvelopeError("calibration", [Violation(
                "actuator_mm", actuator_mm,
                lim.depth_max_mm if actuator_mm > lim.depth_max_mm else lim.depth_min_mm,
                "is outside the pen's actuator travel")])

    def _calibration_setpoints(self, actuator_mm: float, speed_hz: float) -> SetSetpoints:
        lim = self.identity.limits
        return SetSetpoints(
            depth_um=units.mm_to_um(actuator_mm),
            speed_centihz=units.hz_to_centihz(speed_hz),
            duty_permille=units.pct_to_permille(lim.duty_max_pct),
            period_us=units.ms_to_us(max(lim.period_min_ms, min(100.0, lim.period_max_ms))),
        )

    def _do_calibration_move(self, actuator_mm: float) -> _Op:
        self._require(State.CALIBRATING, action="move the actuator for calibration")
        self._check_actuator(actuator_mm)
        self._cal_actuator_mm = actuator_mm
        speed = self.identity.limits.speed_min_hz
        return self._op([self._calibration_setpoints(actuator_mm, speed)])

    def _do_calibration_spin(self, speed_hz: float, on: bool) -> _Op:
        self._require(State.CALIBRATING, action="spin the motor for calibration")
        lim = self.identity.limits
        if on and not lim.speed_min_hz <= speed_hz <= lim.speed_max_hz:
            raise EnvelopeError("calibration", [Violation(
                "speed_hz", speed_hz, lim.speed_max_hz if speed_hz > lim.speed_max_hz
                else lim.speed_min_hz, "is outside the pen's speed range")])
        if not on:
            return self._op([NeedleStop(), Disarm()])
        actuator = getattr(self, "_cal_actuator_mm", lim.depth_min_mm)
        self._next_lease_s = 0.0
        self._lease_hold.clear()
        return self._op([self._calibration_setpoints(actuator, speed_hz),
                         LeaseRenew(self.lease_ms), Arm(), NeedleStart()])

    def _do_end_calibration(self, calibration: Calibration | None) -> _Op:
        self._require(State.CALIBRATING, action="end calibration")
        steps: list[Message] = [NeedleStop(), Retract(), Disarm()]

        def done() -> None:
            self._forget_setpoints()  # calibration moved the actuator
            if calibration is not None:
                self._calibration = calibration
                if self.zone_name is not None:
                    self._zone = self._pen_bounded(self.zones[self.zone_name])
            self._fire("end_calibration", "calibration ended")

        if calibration is not None:
            calibration.check_for(self.identity.serial)
        if calibration is not None and Capability.CALIBRATION_TABLE in self.identity.capabilities:
            points = [(units.mm_to_um(a), units.mm_to_um(t)) for a, t in calibration.points[:8]]
            written_at_s = int(calibration.created_at.timestamp())
            steps.append(CalibrationWrite.from_points(points, written_at_s))
        return self._op(steps, done)

    def _do_request(self, message: Message) -> _Op:
        return self._op([message])

    def _nack_error(self, step: Message, nack: Nack) -> SmpError:
        reason = NackReason(nack.reason)
        err = CommandRefused(step.TYPE, reason, nack.detail)
        if reason is NackReason.OUT_OF_LIMITS:
            err.args = (f"{err} — field {LimitField(nack.detail).description}",)
        if reason is NackReason.CONDITION_ACTIVE and self.telemetry:
            err.args = (f"{err}; still active: {', '.join(self.telemetry.faults.names)}",)
        return err

    # ---- state machine plumbing

    def _fire(self, trigger: str, reason: str) -> None:
        with self._fsm_lock:
            old = self.state
            if old in (State.ESTOP, State.FAULT) and not getattr(self._fsm, f"may_{trigger}")():
                # a stop latched from another thread overtook this request
                raise PenFault(f"the controller is {old.value}: {self.last_fault}")
            getattr(self._fsm, trigger)()
            new = self.state
        self._log = self._log.bind(state=new.value)
        self._log.info("state", old=old.value, new=new.value, reason=reason)
        loop = self._loop_thread
        if loop is not None and loop.is_alive() and threading.current_thread() is not loop:
            self._queue.put(("notify", old, new, reason))  # listeners run in the loop thread
        else:
            self._notify_state(old, new, reason)

    def _notify_state(self, old: State, new: State, reason: str) -> None:
        for listener in list(self._state_listeners):
            try:
                listener(old, new, reason)
            except Exception:
                self._log.exception("state listener failed")
