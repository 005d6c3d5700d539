"""Connecting a `PenController` (a mixin): open the port, the handshake through the request
engine (IDENTIFY, protocol and catalogue check, telemetry rate), settling the pen's state at
connect (a needle found running is stopped, never adopted), reconnecting, closing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import structlog

from firmware_protocol import PROTOCOL_VERSION, SCHEMA_HASH, Message
from firmware_protocol.codes import Fault, FirmwareState, NackReason
from firmware_protocol.messages import (
    Disarm,
    EStop,
    Identify,
    IdentifyRequest,
    NeedleStop,
    SetTelemetryRate,
)
from smpdevice.control.core import ControllerCore
from smpdevice.control.options import LEASE_RANGE_MS
from smpdevice.control.pen import PenIdentity, PenTelemetry
from smpdevice.control.states import (
    CLOSED_BY_PROGRAM,
    MOTION,
    NEUTRAL,
    DifferentPen,
    FaultInfo,
    HandshakeError,
    State,
    StateError,
)
from smpdevice.errors import SmpError
from smpdevice.link.engine import Operation, RequestEngine
from smpdevice.link.notifier import Notifier
from smpdevice.link.wire import CommandRefused, Link, LinkTimeout
from smpdevice.transport import DEFAULT_PORT, open_port

if TYPE_CHECKING:
    from smpdevice.link.items import EngineHost

log = structlog.get_logger("smpdevice.controller")
ESTOP_LATCHED_HERE = ("E-stop requested by the host, latched here until clear_faults() / "
                      "`smp clear` (also across link loss and reconnect)")
_C = TypeVar("_C", bound="ConnectionMixin")


class ConnectionMixin(ControllerCore):
    """connect / open / reconnect / close."""

    _expected_serial: str | None = None  # during reconnect(): the only pen to take back
    # EVENT BOOTED counted by the loop (news.py) in the wire's order with the replies, noted
    # as the pen takes its rate (the first time: it is up): a boot counted after is a reboot
    # that set its rate back to its boot default (0 = off on some pens: review 20)
    _boots_seen, _rate_boots = 0, 0
    _up_boots: int | None = None
    _report_at_boot: PenTelemetry | None = None  # the last report before a BOOTED (news.py)
    _boot_refused = False  # a NACK BOOTING after the first report: it rebooted
    _pen_rebooted: bool = False  # requests.py: a clear asks the telemetry rate again
    # close() ran and no open() since: every wait on this pen ends, and what waits on a
    # lost link's reconnect (an aio stream) is told through `close_listeners`
    _closed: bool = False
    close_listeners: Notifier[[]]  # controller.py `_setup`; called with nothing after close()

    @property
    def closed(self) -> bool:
        """True once `close()` has run (whatever the state it closed from, a lost link too)
        and until the next `open()` / `reconnect()`: nothing more comes from the pen."""
        return self._closed

    @classmethod
    def connect(cls: type[_C], port: str = DEFAULT_PORT, **kwargs: Any) -> _C:
        """Open `port`, run the handshake and return a controller in idle (or fault/estop)."""
        ctl = cls(port, **kwargs)
        ctl.open()
        return ctl

    def open(self) -> None:
        """Connect (from `disconnected`): open the port, handshake, settle the pen's state."""
        if self.state is not State.DISCONNECTED:
            raise StateError(f"already {self.state.value}; close() first")
        self._fire("connect", "open")
        self._closed = False  # (after the state's change: a stream begun now is not ended)
        self._lease_hold.clear()  # (an E-stop latched here stays: only clear_faults ends it)
        try:
            self._open_link()
            settled = self._settle_pen()
            if self._boots_seen > self._rate_boots:  # rebooted after its first report
                self._ask_rate()
            if self._estop_hold:
                self._reassert_estop()
        except BaseException:
            self._shutdown_loop()
            if self.link is not None:
                self.link.close()
            if self.state is State.CONNECTING:
                self._fire("connect_failed", "connection failed")
            raise
        with self._fsm_lock:  # an estop() meanwhile has set the hold before it takes this lock
            settled = self._rebooted_verdict(settled)  # the loop counts boots under this lock
            if self._estop_hold:
                settled = "connected_estopped"
                if self.last_fault is None or "E-stop" not in self.last_fault.reason:
                    self.last_fault = FaultInfo(ESTOP_LATCHED_HERE)
            self._fire(settled, "connected")

    def _reassert_estop(self) -> None:
        """The host's E-stop latch outlives the link (review r12): tell the pen again, so it
        latches too; the controller connects into `estop` whatever the pen answers."""
        with contextlib.suppress(SmpError):
            self._eng.call(lambda: Operation([EStop()], attempts=2))

    def reconnect(self) -> None:
        """After a lost link: connect to the same port again. The needle stays stopped."""
        if self.state is not State.DISCONNECTED:
            raise StateError(f"reconnect is for a lost link; the controller is {self.state.value}")
        self._refuse_in_loop("reconnect()")  # the loop cannot replace itself from inside
        self._shutdown_loop()
        # Checked in the handshake, before anything of the answering pen is taken on (its
        # identity, limits, lease): a refused pen leaves this controller the one it was.
        self._expected_serial = self.identity.serial if self.identity is not None else None
        try:
            self.open()
        finally:
            self._expected_serial = None

    def _open_link(self) -> None:
        port = open_port(self.port_url, baudrate=self.baudrate)
        self._adopt_port_clock(port)  # pensim://?clock=virtual: the pen's clock (sim_time.py)
        self._report_at_boot = None
        self._report = (None, 0)  # no report yet; a new link counts its frames from 0
        self.link = link = Link(port, clock=self.clock)
        # A fresh engine (and queue) per connection: nothing from the old one may run. It is
        # the only way to the pen, the handshake included.
        host = cast("EngineHost", self)  # a PenController: what the engine asks of its host
        self._engine = engine = RequestEngine(link, host, lease_ms=self.lease_ms,
                                              telemetry_hz=self.telemetry_hz, clock=self.clock,
                                              motion=MOTION, neutral=NEUTRAL)
        link._on_lost = engine.link_lost
        link.gate = self.motion_gate  # every motion frame is re-checked under the write lock
        link.add_listener(self._on_pen_message)
        engine.start()
        link.start()
        self._boot_refused = self._pen_rebooted = False  # its rate is asked below
        self._up_boots = None
        reply = self._request_after_boot(IdentifyRequest())
        if not isinstance(reply, Identify):
            raise HandshakeError(f"the pen answered IDENTIFY_REQUEST with {type(reply).__name__}")
        self._check_identity(reply)
        expected = self._expected_serial
        if expected is not None and reply.serial_str != expected:
            raise DifferentPen(f"a different pen ({reply.serial_str}) answered on "
                               f"{self.port_url}; expected {expected}. Connect anew to use it.",
                               reply.serial_str)
        self.identity = PenIdentity.from_message(reply)
        self._check_footswitch()  # `required` on a pen without a footswitch: refused
        self._log = log.bind(pen_serial=self._ident.serial, port=self.port_url)
        if self.lease_ms > self._ident.limits.lease_max_ms:
            self.lease_ms = engine.lease_ms = self._ident.limits.lease_max_ms
        rate = min(self.telemetry_hz, self._ident.limits.telemetry_max_hz)
        engine.telemetry_hz = rate
        self._ask_rate()
        self._up_boots = self._rate_boots  # it took a command refused while booting: it is up
        if self._zone is not None:
            self._rebound_zone()  # to this pen's limits (guard.py)
        self._log.info("connected", firmware=self._ident.firmware_version)

    def _request_after_boot(self, message: Message, then: Callable[[], None] | None = None,
                            wait_s: float = 3.0) -> Message:
        """A request (through the engine) that waits out a pen still booting (NACK BOOTING)."""
        deadline = self.clock.now() + wait_s
        while True:
            try:
                return self._eng.call(Operation, [message], then)
            except CommandRefused as exc:
                if exc.reason is not NackReason.BOOTING or self.clock.now() > deadline:
                    raise
                self._wait_news(None, 0.02)  # retry after 20 ms of clock time

    def _check_identity(self, m: Identify) -> None:
        problems = []
        if m.protocol_version != PROTOCOL_VERSION:
            problems.append(f"protocol version: pen {m.protocol_version}, host {PROTOCOL_VERSION}")
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
        _check_pen_identity(m, self.lease_ms)

    def _ask_rate(self) -> None:
        """SET_TELEMETRY_RATE; what the pen took it after is noted by the loop, in the wire's
        order (a BOOTED before its ACK is not after). Failed after a reboot: told as one."""
        def taken() -> None:
            self._rate_boots = self._boots_seen

        try:
            self._request_after_boot(SetTelemetryRate(self._eng.telemetry_hz), taken)
        except SmpError as exc:
            if not self._rebooted():
                raise
            raise LinkTimeout(f"the pen rebooted while connecting (brownout or watchdog) and "
                              f"did not take its telemetry rate again: {exc}. Check the pen's "
                              "power supply, then connect again") from exc

    def _rebooted(self) -> bool:  # since it was up (not the boot of a pen just switched on)
        up = self._up_boots
        return self._boot_refused or (up is not None and self._boots_seen > up)

    def _first_report(self) -> PenTelemetry:
        """The pen's first report (none from before a BOOTED). Rebooted since it took its rate
        (at its boot default rate then, 0 = off on some pens), or silent (its EVENT BOOTED may
        be lost): the rate is asked again, once, and a report since awaited; else a clear
        error (review 20)."""
        wait_s = max(1.0, 20 / max(self.telemetry_hz, 1))

        def fresh() -> PenTelemetry | None:
            t = self.telemetry
            return t if t is not self._report_at_boot else None

        self._wait_news(lambda: fresh() is not None or self._boots_seen > self._rate_boots,
                        wait_s)
        t = fresh()
        if t is not None and self._boots_seen == self._rate_boots:
            return t
        self._ask_rate()
        self._wait_news(lambda: fresh() is not None, wait_s)
        t = fresh()
        if t is not None:
            return t
        if self._rebooted():
            raise LinkTimeout(f"the pen rebooted while connecting (brownout or watchdog) and "
                              f"sends no telemetry since, though asked again for "
                              f"{self._eng.telemetry_hz} Hz; check its power supply, then "
                              "connect again")
        raise LinkTimeout("the pen sends no telemetry (asked twice); check the cable and the pen")

    def _rebooted_verdict(self, settled: str) -> str:
        """Under `_fsm_lock`, as the handshake ends: a pen that rebooted since it was up is
        connected latched with the reboot named (POWER_RESET), as at any other time, never
        `idle` unnoticed; the loop counts boots under this lock, and after it, sees `idle`."""
        if not self._rebooted():
            return settled
        if self._boots_seen > self._rate_boots:
            self._pen_rebooted = True  # at its boot default rate: the clear asks it again
        t = self.telemetry
        faults = (t.faults if t is not None else Fault(0)) | Fault.POWER_RESET
        estop = settled == "connected_estopped"
        self.last_fault = FaultInfo("the pen rebooted while connecting (brownout or watchdog)"
                                    + ("; it reports a latched E-stop" if estop else ""), faults)
        return "connected_estopped" if estop else "connected_faulted"

    def _settle_pen(self) -> str:
        """Wait for the first telemetry and bring the pen to a safe state; never resume."""
        t = self._first_report()
        try:
            if t.state is FirmwareState.RUNNING:
                self._eng.call(Operation, [NeedleStop(), Disarm()])
            elif t.state is FirmwareState.ARMED:
                self._eng.call(Operation, [Disarm()])
        except CommandRefused as exc:
            if exc.reason is NackReason.BOOTING:  # rebooted after its report: needle stopped
                self._boot_refused = True
                self._ask_rate()  # waits the boot out; `open` names the reboot
                self._eng.mark_reports_stale()
                return "connected_faulted"
            if exc.reason not in (NackReason.FAULT_LATCHED, NackReason.ESTOP_LATCHED):
                raise
            # The last host's lease ran out as this one connected: the pen stopped the needle
            # and latched by itself. At rest: connected faulted, as if it had latched before.
            latched = (FirmwareState.FAULT, FirmwareState.ESTOP)
            if self._wait_news(lambda: self.telemetry is not None
                               and self.telemetry.state in latched, 1.0):
                t = self.telemetry or t
            else:  # its report is late: the refusal says it
                self._eng.mark_reports_stale()
                self.last_fault = FaultInfo(f"the pen refused {exc.command.name}: "
                                            f"{exc.reason.name}", t.faults)
                estop = exc.reason is NackReason.ESTOP_LATCHED
                return "connected_estopped" if estop else "connected_faulted"
        self._eng.mark_reports_stale()  # telemetry from before these is stale
        if t.state is FirmwareState.FAULT or t.faults:  # POWER_RESET: named as the reboot it is
            self.last_fault = FaultInfo("the pen rebooted (brownout or watchdog), latched since"
                                        if Fault.POWER_RESET in t.faults
                                        else "pen reports a latched fault", t.faults)
            return "connected_faulted"
        if t.state is FirmwareState.ESTOP:
            self.last_fault = FaultInfo("pen reports a latched E-stop", t.faults)
            return "connected_estopped"
        return "connected"

    def close(self) -> None:
        """Stop the needle if it runs, disarm, and close the port. Safe to call twice.
        From a listener (the loop thread) StateError, and nothing changes (`_refuse_in_loop`).
        Then `closed`, and every wait on the pen ends: `wait_for_state`, and (through
        `close_listeners`) the aio streams, also when the link was lost before (no change of
        state then). A request after it: StateError saying it was closed."""
        self._refuse_in_loop("close()")
        self._lease_hold.set()  # even if nothing below gets through, the pen stops by itself
        try:
            engine = self._engine
            if (self.link is not None and self.link.lost is None and engine is not None
                    and engine.alive):
                with contextlib.suppress(SmpError):  # two tries each: closing must not linger
                    engine.call(lambda: Operation([NeedleStop(), Disarm()], attempts=2))
            self._shutdown_loop()
            self._log_fault_when_due(float("inf"))  # a fault's history outlives a quick close
            if self.link is not None:
                self.link.close()
            if self.state is not State.DISCONNECTED:
                self._fire("link_lost", CLOSED_BY_PROGRAM)
        finally:
            self._notify_state()  # every change told first (state_changes: the last item)
            self._closed = True
            self._announce()  # a blocking waiter looks again (wait_for_state)
            self.close_listeners.notify()

    def _not_connected(self) -> StateError:
        """The error of a request while disconnected: closed by the program, or why lost."""
        if self._closed:
            return StateError("not connected to a pen: this controller was closed (close()), "
                              "nothing more is sent to the pen. Reconnect (reconnect()) or "
                              "connect anew first.")
        lost = self.link.lost if self.link is not None else None
        return StateError(f"not connected to a pen{f': {lost}' if lost else ''}. Connect or "
                          "reconnect first.")

    def _refuse_in_loop(self, what: str) -> None:
        """Closing from the loop thread could neither stop the needle (the pen's answer comes
        through that very thread) nor leave it supervised (review 9a R05: the controller read
        `disconnected` while the pen ran on until its lease lapsed); a wait there holds up the
        lease renewal (review 15); a reconnect there would replace the loop it runs in.
        Refused before anything changes: the needle, the lease and the port stay as they were."""
        engine = self._engine
        if engine is not None and engine.in_loop():
            raise StateError(
                f"{what} cannot be called from a listener (it runs in the controller's own "
                f"thread, which carries the pen's answers): nothing was changed, the pen is "
                f"{self.state.value}. Hand the call to another thread (e.g. a queue your own "
                "thread reads)")

    def _shutdown_loop(self) -> None:
        if self._engine is not None:
            self._eng.stop()


_PAIRS = (("depth", "depth_min_um", "depth_max_um", "µm"),
          ("speed", "speed_min_centihz", "speed_max_centihz", "0.01 Hz"),
          ("duty", "duty_min_permille", "duty_max_permille", "0.1 %"),
          ("period", "period_min_us", "period_max_us", "µs"))


def _check_pen_identity(m: Identify, lease_ms: int) -> None:
    """Refuse, before anything of it is taken on, a pen whose IDENTIFY the host cannot work
    with: a serial that cannot key its calibration and records, a lease too short to keep
    renewed (the session would open, then fail at the first LEASE_RENEW), no telemetry (the
    host could not see the pen), or limits whose minimum is above their maximum."""
    serial = m.serial.rstrip(b"\0")
    if not serial or any(not 0x21 <= byte <= 0x7E for byte in serial):
        raise HandshakeError(
            f"the pen's serial number {m.serial!r} is not usable: calibrations and records are "
            "kept per serial, which must be 1..12 printable ASCII characters (no spaces, "
            "control characters or NUL inside). Have the pen's serial number set by its maker; "
            "do not use this pen.")
    who = f"pen {m.serial_str} (firmware {m.firmware_version})"
    low_ms = LEASE_RANGE_MS[0]
    if m.lease_max_ms < low_ms:
        raise HandshakeError(
            f"{who} grants a lease of at most {m.lease_max_ms} ms (IDENTIFY lease_max_ms), "
            f"shorter than the {low_ms} ms the host can keep renewed (host lease_ms={lease_ms}, "
            "renewed every quarter lease): no pass could run. Set the pen to grant at least "
            f"{low_ms} ms (e.g. `smp sim --lease-max-ms 2000`, pensim://?lease=2000), or use "
            "another pen.")
    if m.telemetry_max_hz < 1:
        raise HandshakeError(
            f"{who} reports telemetry_max_hz={m.telemetry_max_hz}: the host needs telemetry "
            "(at least 1 Hz) to see what the pen does and that it is there. Fix the pen's "
            "firmware configuration, or use another pen.")
    for what, low_name, high_name, unit in _PAIRS:
        low, high = getattr(m, low_name), getattr(m, high_name)
        if low > high:
            raise HandshakeError(
                f"{who} reports {what} limits {low_name}={low} above {high_name}={high} "
                f"({unit}): no setpoint could satisfy them. Fix the pen's firmware "
                "configuration, or use another pen.")
    if m.duty_max_permille > 1000:
        raise HandshakeError(
            f"{who} reports duty_max_permille={m.duty_max_permille}: a duty cycle is at most "
            "100 % (1000). Fix the pen's firmware configuration, or use another pen.")
