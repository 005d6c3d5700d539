"""The live monitor's look: a `Snapshot` (smpdevice.monitor) drawn with rich.

Ordered by importance, top down (state, problem, faults, keys, figures, link), so a short
terminal, where `rich.live` crops the bottom, still shows what matters. The layout fits 80
columns. Nothing here reads the pen: everything shown comes from the snapshot.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from smpdevice import checks
from smpdevice.control import State
from smpdevice.monitor import KEYS_HELP, Snapshot

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


def render(snap: Snapshot) -> Panel:
    """The whole view of one snapshot as one rich renderable."""
    checks.instance("snap", snap, Snapshot, "a Snapshot (Monitor.snapshot())")
    parts: list[RenderableType] = []
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
    parts.append(Text(snap.calibration_note, style="green" if snap.calibrated else "bold yellow"))
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
    parts.append(_link(snap))
    title = f"smp monitor — pen {snap.pen_serial or '?'}"
    if snap.firmware_version:
        title += f" (firmware {snap.firmware_version})"
    return Panel(Group(*parts), title=title, subtitle=snap.port,
                 border_style="red" if snap.problem else "blue")


def render_text(snap: Snapshot, width: int = 110) -> str:
    """The view as plain text (no colours), e.g. for `--once` into a pipe and for tests."""
    checks.whole_number("width", width, 20, 1000)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(render(snap))
    return console.export_text()


def _link(snap: Snapshot) -> Text:
    lk = snap.link
    if not lk:
        return Text("link: none")
    received, lost = int(lk["telemetry_received"] or 0), int(lk["telemetry_lost"] or 0)
    share = f" ({100 * lost / (received + lost):.1f} %)" if received + lost else ""
    return Text(
        f"link: round trip {_num(lk['rtt_last_ms'], 1)} ms "
        f"(avg {_num(lk['rtt_smoothed_ms'], 1)}) · retransmit timeout "
        f"{_num(lk['rto_ms'], 0)} ms · frames tx/rx {lk['tx_frames']}/{lk['rx_frames']}\n"
        f"retransmissions {lk['retransmissions']} · timeouts {lk['timeouts']} · "
        f"telemetry received {received}, lost {lost}{share}\n"
        f"decoder: garbage {lk['garbage_bytes']} bytes · bad CRC {lk['bad_crc']} · "
        f"bad frames {lk['bad_frames']}", style="dim" if not snap.problem else "")


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return "—" if value is None else str(value)


def _yes(value: bool | None, yes: str, no: str) -> str:
    return "—" if value is None else (yes if value else no)
