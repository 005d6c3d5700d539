"""The live monitor's logic: what it shows and what its keys do, testable without a terminal.

`Monitor` owns (or is given) a `PenController`, takes `snapshot()`s of everything worth seeing
(controller and pen state, setpoints against measured values, counters, link quality, latched
faults, lease) and renders them with rich (`render()`, or `render_text()` for plain text). Keys
go to `handle_key()`; the command line (`smp monitor`) reads them from the terminal in a thread.

Keys: `e` or space E-stop, `c` clear faults, `r` reconnect after a lost link, `q` quit.
Nothing the monitor does ever starts the needle: a reconnect leaves the pen idle, in fault or
in E-stop, exactly as the controller finds it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from firmware_protocol.codes import FAULT_DESCRIPTIONS, Fault
from smpdevice.control import PenController, State
from smpdevice.control.calibration import Calibration
from smpdevice.errors import SmpError

KEYS_HELP = "e/space E-stop · c clear faults · r reconnect · q quit"
ESTOP_KEYS = ("e", "E", " ")
STALE_TELEMETRY_S = 0.5

_STATE_STYLE = {
    State.DISCONNECTED: "bold white on red",
    State.CONNECTING: "yellow",
    State.IDLE: "green",
    State.ARMED: "bold yellow",
    State.RUNNING: "bold cyan",
    State.CALIBRATING: "magenta",
    State.FAULT: "bold white on red",
    State.ESTOP: "bold white on red",
}


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
    """A live view of one pen. Give it a port (it connects) or a connected controller.

        mon = Monitor("pensim://bench")
        mon.connect()
        print(mon.render_text())
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
    ) -> None:
        if pen is None and port is None:
            raise ValueError("give a port or a controller")
        self.port = port if port is not None else pen.port_url
        self.pen = pen
        self._owns_pen = pen is None
        self.calibration = calibration
        self._load_calibration = load_calibration and calibration is None
        self.calibration_note = "uncalibrated"
        self.message = ""
        self.connect_error: str | None = None
        self.quit = threading.Event()
        self._lock = threading.Lock()  # one key action at a time
        if pen is not None:
            self._after_connect()

    # ------------------------------------------------------------------ connection

    def connect(self) -> bool:
        """Connect to the pen (first time). Returns False, with the reason shown, on failure."""
        try:
            self.pen = PenController.connect(self.port)
        except SmpError as exc:
            self.connect_error = str(exc)
            self.message = f"cannot connect: {exc}"
            return False
        self.connect_error = None
        self._after_connect()
        return True

    def _after_connect(self) -> None:
        pen = self.pen
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
        self._after_connect()
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
            snap.telemetry_age_s = max(0.0, time.monotonic() - t.received_at_s)
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

    def render(self, snap: Snapshot | None = None, width: int | None = None) -> Panel:
        """The whole view as one rich renderable.

        Ordered by importance, top down (state, problem, faults, keys, figures, link), so a
        short terminal, where `rich.live` crops the bottom, still shows what matters.
        `width` is accepted for callers that know it; the layout fits 80 columns.
        """
        snap = snap or self.snapshot()
        parts: list = []
        head = Text()
        head.append("controller ")
        head.append(f" {snap.controller_state} ",
                    style=_STATE_STYLE.get(State(snap.controller_state), ""))
        head.append(f"   pen {snap.pen_state or '-'}")
        if snap.zone:
            head.append(f"   zone {snap.zone}")
        lease = "—" if snap.lease_remaining_ms is None else f"{snap.lease_remaining_ms} ms"
        head.append(f"   lease remaining {lease}")
        parts.append(head)
        parts.append(Text(snap.calibration_note,
                          style="green" if snap.calibrated else "bold yellow"))
        if snap.problem:
            parts.append(Text(f" {snap.problem} ", style="bold white on red"))
        faults = Text()
        faults.append("latched faults: ", style="bold")
        if snap.faults:
            for name, description in snap.faults:
                faults.append(f"\n  {name}", style="bold red")
                faults.append(f": {description}")
        else:
            faults.append("none", style="green")
        parts.append(faults)
        if snap.message:
            parts.append(Text(snap.message, style="bold"))
        parts.append(Text(f"keys: {KEYS_HELP}", style="cyan"))

        figures = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
        for col in ("quantity", "setpoint", "measured", "limit"):
            figures.add_column(col, no_wrap=col == "quantity",
                               justify="left" if col in ("quantity", "limit") else "right")
        for f in snap.figures:
            figures.add_row(f"{f.name} ({f.unit})", _num(f.setpoint, f.digits),
                            _num(f.measured, f.digits), f.limit)
        if not snap.figures:
            figures.add_row("no telemetry yet", "", "", "")
        parts.append(figures)

        parts.append(Text(
            f"strokes {_int(snap.strokes)} · impressions {_int(snap.impressions)} · "
            f"cartridge {_yes(snap.cartridge_present, 'in', 'OUT')} · "
            f"footswitch {_yes(snap.footswitch, 'down', 'up')}"))
        lk = snap.link
        if lk:
            received, lost = lk["telemetry_received"], lk["telemetry_lost"]
            share = f" ({100 * lost / (received + lost):.1f} %)" if received + lost else ""
            parts.append(Text(
                f"link: round trip {_num(lk['rtt_last_ms'], 1)} ms "
                f"(avg {_num(lk['rtt_smoothed_ms'], 1)}) · retransmit timeout "
                f"{_num(lk['rto_ms'], 0)} ms · frames tx/rx {lk['tx_frames']}/{lk['rx_frames']}\n"
                f"retransmissions {lk['retransmissions']} · timeouts {lk['timeouts']} · "
                f"telemetry received {received}, lost {lost}{share}\n"
                f"decoder: garbage {lk['garbage_bytes']} bytes · bad CRC {lk['bad_crc']} · "
                f"bad frames {lk['bad_frames']}", style="dim" if not snap.problem else ""))
        else:
            parts.append(Text("link: none"))
        title = f"smp monitor — pen {snap.pen_serial or '?'}"
        if snap.firmware_version:
            title += f" (firmware {snap.firmware_version})"
        return Panel(Group(*parts), title=title, subtitle=snap.port,
                     border_style="red" if snap.problem else "blue")

    def render_text(self, width: int = 110) -> str:
        """The view as plain text (no colours), e.g. for `--once` into a pipe and for tests."""
        console = Console(width=width, record=True, file=_Null(), color_system=None)
        console.print(self.render(width=width))
        return console.export_text()


def _stored_calibration(serial: str) -> Calibration | None:
    """The pen's newest valid stored calibration, or None (also when the store is unreadable)."""
    try:
        from smpdevice.calibration.store import CalibrationStore

        return CalibrationStore().latest_valid(serial)
    except SmpError:
        return None


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return "—" if value is None else str(value)


def _yes(value: bool | None, yes: str, no: str) -> str:
    return "—" if value is None else (yes if value else no)
