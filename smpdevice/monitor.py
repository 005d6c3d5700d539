"""The live monitor's logic: what it shows and what its keys do, testable without a terminal.

`Monitor` owns (or is given) a `PenController`, takes `snapshot()`s of everything worth seeing
(controller and pen state, setpoints against measured values, counters, link quality, latched
faults, lease) as plain data; `smpdevice.ui.monitor_view` draws a snapshot with rich. Keys go
to `handle_key()`; the command line (`smp monitor`) reads them from the terminal in a thread.

Keys: `e` or space E-stop, `c` clear faults, `r` reconnect after a lost link, `q` quit.
Nothing the monitor does ever starts the needle: a reconnect leaves the pen idle, in fault or
in E-stop, exactly as the controller finds it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from firmware_protocol.codes import FAULT_DESCRIPTIONS, Fault
from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.config import DEFAULTS
from smpdevice.control import PenController, State
from smpdevice.control.calibration import Calibration
from smpdevice.errors import SmpError
from smpdevice.link.clock import Clock

KEYS_HELP = "e/space E-stop · c clear faults · r reconnect · q quit"
ESTOP_KEYS = ("e", "E", " ")
STALE_TELEMETRY_S = 0.5

@dataclass
class Figure:
    """One quantity: what was asked for, what the pen measures, and the limit (None: n/a)."""

    name: str
    unit: str
    setpoint: float | None
    measured: float | None
    limit: str = ""
    digits: int = 3


@dataclass
class Snapshot:
    """Everything the monitor shows at one moment (plain data, for tests and scripts)."""

    port: str
    connected: bool
    controller_state: str
    pen_serial: str | None = None
    firmware_version: str | None = None
    pen_state: str | None = None
    calibrated: bool = False
    calibration_note: str = "uncalibrated"
    zone: str | None = None
    figures: list[Figure] = field(default_factory=list)
    strokes: int | None = None
    impressions: int | None = None
    footswitch: bool | None = None
    cartridge_present: bool | None = None
    lease_remaining_ms: int | None = None
    telemetry_age_s: float | None = None
    link: dict[str, float | int | None] = field(default_factory=dict)
    faults: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None  # "link lost: ...", "E-stop latched: ...", ...
    message: str = ""  # the result of the last key


class Monitor:
    """A live view of one pen. Give it a port (it connects, on `clock` if given) or a
    connected controller.

        mon = Monitor("pensim://bench")
        mon.connect()
        print(monitor_view.render_text(mon.snapshot()))   # smpdevice.ui.monitor_view
        mon.handle_key("e")      # E-stop
        mon.close()
    """

    def __init__(
        self,
        port: str | None = None,
        *,
        pen: PenController | None = None,
        calibration: Calibration | None = None,
        load_calibration: bool = True,
        clock: Clock | None = None,
    ) -> None:
        port = _checked_args(port, pen, calibration, load_calibration, clock)
        self.port: str = port
        self.pen = pen
        self._clock = clock  # the controller's, when the monitor connects (virtual in tests)
        self._owns_pen = pen is None
        self.calibration = calibration
        self._load_calibration = load_calibration and calibration is None
        self.calibration_note = "uncalibrated"
        self.message = ""
        self.connect_error: str | None = None
        self.quit = threading.Event()
        self._lock = threading.Lock()  # one key action at a time
        if pen is not None:
            self._after_connect(pen)

    # ------------------------------------------------------------------ connection

    def connect(self) -> bool:
        """Connect to the pen (first time). Returns False, with the reason shown, on failure."""
        # The built-in footswitch mode, never the station's: the monitor starts no needle (the
        # mode is sent only before a start), and a broken or pen-incompatible setting must not
        # keep the E-stop key from the pen (cli/stop_settings.py).
        clock = {} if self._clock is None else {"clock": self._clock}
        try:
            self.pen = pen = PenController.connect(self.port, footswitch=DEFAULTS["footswitch"],
                                                   **clock)
        except SmpError as exc:
            self.connect_error = str(exc)
            self.message = f"cannot connect: {exc}"
            return False
        self.connect_error = None
        self._after_connect(pen)
        return True

    def _after_connect(self, pen: PenController) -> None:
        if self.calibration is None and pen.calibration is not None:
            self.calibration = pen.calibration
        if self.calibration is None and self._load_calibration and pen.identity is not None:
            self.calibration = _stored_calibration(pen.identity.serial)
        self._describe_calibration()

    def _describe_calibration(self) -> None:
        cal = self.calibration
        serial = self.pen.identity.serial if self.pen and self.pen.identity else None
        if cal is None:
            from smpdevice.outcomes import calibrate_command

            self.calibration_note = ("uncalibrated: depth in skin unknown; calibrate: "
                                     + calibrate_command(self.port or "PORT"))
        elif serial is not None and cal.pen_serial != serial:
            self.calibration = None
            self.calibration_note = f"uncalibrated: the calibration is for pen {cal.pen_serial}"
        else:
            self.calibration_note = (
                f"calibration {cal.calibration_id} by {cal.technician}, "
                f"valid until {cal.expires_at:%Y-%m-%d}"
            )

    def reconnect(self) -> str:
        """After a lost link: connect again. The needle stays stopped (it never resumes)."""
        if self.pen is None:
            return "connected" if self.connect() else self.message
        if self.pen.state is not State.DISCONNECTED:
            return f"already connected ({self.pen.state.value}); r is for a lost link"
        try:
            self.pen.reconnect()
        except SmpError as exc:
            return f"reconnect failed: {exc}"
        self._after_connect(self.pen)
        return f"reconnected: controller {self.pen.state.value}; the needle stays stopped"

    def close(self) -> None:
        if self.pen is not None and self._owns_pen:
            self.pen.close()

    # ------------------------------------------------------------------ keys

    def estop(self) -> str:
        """E-stop the pen now (from any thread)."""
        if self.pen is None:
            return "E-stop not sent: no pen connected"
        try:
            self.pen.estop()
        except SmpError as exc:
            return f"E-STOP NOT CONFIRMED: {exc}"
        return "E-stop latched; fix the cause, then press c to clear"

    def clear_faults(self) -> str:
        if self.pen is None:
            return "no pen connected"
        try:
            self.pen.clear_faults()
        except SmpError as exc:
            return f"not cleared: {exc}"
        return "cleared: the pen is idle; the needle starts only when a session starts it"

    def handle_key(self, key: str) -> bool:
        """Act on one key; returns False when the monitor should quit."""
        if key in ESTOP_KEYS:  # first, and without waiting for another key's action
            self.message = self.estop()
            return True
        if key in ("q", "Q", "\x03", "\x04"):
            self.quit.set()
            return False
        with self._lock:
            if key in ("c", "C"):
                self.message = self.clear_faults()
            elif key in ("r", "R"):
                self.message = "reconnecting..."
                self.message = self.reconnect()
            elif key.strip():
                self.message = f"unknown key {key!r}; keys: {KEYS_HELP}"
        return True

    # ------------------------------------------------------------------ the view

    def snapshot(self) -> Snapshot:
        pen = self.pen
        if pen is None:
            return Snapshot(
                port=self.port, connected=False, controller_state=State.DISCONNECTED.value,
                calibration_note=self.calibration_note,
                problem=f"not connected: {self.connect_error or 'no pen'}; press r to retry",
                message=self.message,
            )
        state = pen.state
        ident = pen.identity
        t = pen.telemetry
        cal = self.calibration
        snap = Snapshot(
            port=self.port,
            connected=state is not State.DISCONNECTED,
            controller_state=state.value,
            pen_serial=ident.serial if ident else None,
            firmware_version=ident.firmware_version if ident else None,
            calibrated=cal is not None,
            calibration_note=self.calibration_note,
            zone=pen.zone_name,
            message=self.message,
        )
        limits = ident.limits if ident else None
        sp = pen.setpoints
        if t is not None:
            snap.pen_state = t.state.name
            snap.strokes, snap.impressions = t.strokes, t.impressions
            snap.footswitch, snap.cartridge_present = t.footswitch, t.cartridge_present
            snap.lease_remaining_ms = t.lease_remaining_ms
            # on the pen's clock, as telemetry is stamped (virtual in tests)
            snap.telemetry_age_s = max(0.0, pen.clock.now() - t.received_at_s)
            snap.faults = [(f.name, FAULT_DESCRIPTIONS.get(f, "")) for f in Fault
                           if f in t.faults and f.name]
            zone = pen.zone
            if cal is not None:
                window = (f"{zone.epidermal_floor_mm:g}..{zone.dermal_ceiling_mm:g}"
                          if zone else "")
                set_depth = sp.depth_mm if sp else cal.to_depth_mm(t.actuator_cmd_mm)
                snap.figures.append(Figure("depth in skin", "mm", set_depth,
                                           cal.to_depth_mm(t.actuator_mm), window))
            snap.figures.append(Figure(
                "actuator", "mm", t.actuator_cmd_mm, t.actuator_mm,
                f"{limits.depth_min_mm:g}..{limits.depth_max_mm:g}" if limits else ""))
            snap.figures.append(Figure(
                "speed", "Hz", sp.speed_hz if sp else None, t.speed_hz,
                f"{limits.speed_min_hz:g}..{limits.speed_max_hz:g}" if limits else "", 1))
            if sp is not None:
                snap.figures.append(Figure("duty", "%", sp.duty_pct, None, digits=1))
                snap.figures.append(Figure("pulse period", "ms", sp.period_ms, None, digits=1))
            snap.figures.append(Figure("current", "A", None, t.current_a,
                                       f"max {limits.current_max_a:g}" if limits else ""))
            snap.figures.append(Figure("temperature", "°C", None, t.temp_c,
                                       f"max {limits.temp_max_c:g}" if limits else "", 1))
        link = pen.link
        if link is not None:
            stats, rto, dec = link.stats, link.rto, link.decoder.stats
            snap.link = {
                "rtt_last_ms": _ms(rto.last_rtt_s),
                "rtt_smoothed_ms": _ms(rto.srtt_s),
                "rto_ms": _ms(rto.rto_s),
                "tx_frames": stats.tx_frames,
                "rx_frames": stats.rx_frames,
                "retransmissions": stats.retransmissions,
                "timeouts": stats.timeouts,
                "telemetry_received": stats.telemetry_received,
                "telemetry_lost": stats.telemetry_lost,
                "garbage_bytes": dec.garbage_bytes,
                "bad_crc": dec.bad_crc,
                "bad_frames": dec.dropped_frames,
            }
        if state is State.DISCONNECTED:
            reason = str(pen.last_fault) if pen.last_fault else "link lost: closed"
            if not reason.startswith("link lost"):
                reason = f"link lost: {reason}"
            snap.problem = f"{reason} — press r to reconnect (the needle stays stopped)"
        elif state is State.ESTOP:
            snap.problem = f"E-STOP latched: {pen.last_fault} — press c to clear"
        elif state is State.FAULT:
            snap.problem = f"FAULT latched: {pen.last_fault} — fix the cause, press c to clear"
        elif snap.telemetry_age_s is not None and snap.telemetry_age_s > STALE_TELEMETRY_S:
            snap.problem = f"no telemetry for {snap.telemetry_age_s:.1f} s"
        return snap


def _checked_args(port: object, pen: object, calibration: object, load_calibration: object,
                  clock: object) -> str:
    """The port to show, once every argument is of its kind (an integrator's mistake is an
    InvalidArgument naming the argument, never a builtin error from deep inside, R10)."""
    checks.instance("pen", pen, (PenController, type(None)),
                    "a PenController (connected), or None with a port")
    checks.instance("calibration", calibration, (Calibration, type(None)),
                    "a Calibration or None")
    checks.instance("load_calibration", load_calibration, bool, "True or False")
    checks.instance("clock", clock, (Clock, type(None)), "a Clock (now(), is_virtual) or None")
    if port is not None and pen is not None:  # the view would name a port its pen is not on
        raise InvalidArgument(f"port={port!r:.80} and pen=<{type(pen).__name__}> were both "
                              "given: give one of them. Monitor(pen=pen) shows a connected "
                              "controller (on its own port); Monitor(port) connects to a port.")
    if port is not None:
        return checks.text("port", port, max_len=1024)  # as PenController.connect checks it
    if isinstance(pen, PenController):
        return pen.port_url
    raise InvalidArgument("port=None and pen=None: the monitor needs a pen to show. Give a "
                          "port (Monitor('pensim://bench'), then connect()) or a connected "
                          "controller (Monitor(pen=pen)).")


def _stored_calibration(serial: str) -> Calibration | None:
    """The pen's newest valid stored calibration, or None (also when the store is unreadable)."""
    try:
        from smpdevice.calibration.store import CalibrationStore

        return CalibrationStore().latest_valid(serial)
    except SmpError:
        return None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
