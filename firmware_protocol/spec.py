"""The generated parts of docs/protocol.md: message tables, code tables, state rules, examples.

docs/protocol.md holds prose written by people and, between marker comments, blocks rendered
here from the catalogue itself. A test checks that each block is exactly today's rendering, so
the spec cannot drift from the code. After a deliberate change, refresh the file with

    python -m firmware_protocol.spec --write docs/protocol.md

(`--check FILE` exits 1 if the file is stale; no option prints the blocks.)
"""

from __future__ import annotations

import argparse
import enum
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from firmware_protocol.codes import (
    FAULT_DESCRIPTIONS,
    Capability,
    EventCode,
    Fault,
    FirmwareState,
    FootswitchMode,
    LimitField,
    MsgType,
    NackReason,
    TelemetryFlag,
)
from firmware_protocol.describe import describe, wire_range
from firmware_protocol.frame import HEADER_SIZE, MAX_FRAME, MAX_PAYLOAD, OVERHEAD, decode_frame
from firmware_protocol.messages import (
    PROTOCOL_VERSION,
    REGISTRY,
    SCHEMA_HASH,
    Message,
    _layout,
)
from firmware_protocol.rules import (
    ACCEPTED_IN,
    ACTS_WITH_SEQ_0,
    COMMAND_EVENTS,
    DEDUPLICATED,
    EXTRA_CHECKS,
    LIFETIME_EVENTS,
    LIFETIMES,
    SPONTANEOUS_EVENTS,
    TICK_ORDER,
    TRANSITIONS,
    refusal,
    transition,
)
from firmware_protocol.scenario_pen import render_scenario_pen
from firmware_protocol.spec_file import MarkerError, update
from firmware_protocol.timing import TIMING
from firmware_protocol.valid_ranges import REPLIES, VALID_RANGES
from firmware_protocol.vectors import load_vectors

_STRUCT_TYPES = {"B": "u8", "b": "i8", "H": "u16 LE", "h": "i16 LE", "I": "u32 LE",
                 "i": "i32 LE"}
# The letters of the layout strings (an input of CRC_EXTRA and SCHEMA_HASH), defined here so
# that the strings are data, not code.
LAYOUT_CODES: tuple[tuple[str, str], ...] = (
    ("B", "u8: unsigned, 1 byte"),
    ("b", "i8: two's complement, 1 byte"),
    ("H", "u16: unsigned, 2 bytes, little-endian"),
    ("h", "i16: two's complement, 2 bytes, little-endian"),
    ("I", "u32: unsigned, 4 bytes, little-endian"),
    ("i", "i32: two's complement, 4 bytes, little-endian"),
    ("Ns", "N bytes, as they are (N in decimal, e.g. 12s)"),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _direction(t: int) -> str:
    return "host -> pen" if t < 0x40 else "pen -> host"


def _range_text(code: str) -> str:
    r = wire_range(code)
    return f"{r[0]} .. {r[1]}" if r else f"{code[:-1]} bytes"


def schema_text() -> str:
    """The exact ASCII text whose CRC-32 is SCHEMA_HASH."""
    return f"v{PROTOCOL_VERSION};" + ";".join(_layout(REGISTRY[t]) for t in sorted(REGISTRY))


def render_identity() -> str:
    """Protocol version, schema hash and each message's layout string and CRC_EXTRA."""
    rows = []
    for t in sorted(REGISTRY):
        cls = REGISTRY[t]
        rows.append([f"0x{t:02X}", MsgType(t).name, f"`{_layout(cls)}`", f"0x{cls.CRC_EXTRA:02X}"])
    text = schema_text()
    return "\n".join([
        f"- PROTOCOL_VERSION = {PROTOCOL_VERSION}",
        f"- SCHEMA_HASH = 0x{SCHEMA_HASH:08X} ({SCHEMA_HASH})",
        f"- MAX_PAYLOAD = {MAX_PAYLOAD} bytes, frame overhead = {OVERHEAD} bytes, "
        f"MAX_FRAME = {MAX_FRAME} bytes",
        "",
        "Letters of the layout strings:",
        "",
        _table(["letter", "field type"], [[f"`{c}`", d] for c, d in LAYOUT_CODES]),
        "",
        _table(["type", "name", "layout string", "CRC_EXTRA"], rows),
        "",
        f"The SCHEMA_HASH input: these {len(text)} ASCII bytes (no line breaks, no terminator; "
        "shown wrapped at 96 characters):",
        "",
        "```",
        *[text[i : i + 96] for i in range(0, len(text), 96)],
        "```",
    ])


def _message_section(cls: type[Message]) -> str:
    t = MsgType(cls.TYPE)
    head = (
        f"#### 0x{int(t):02X} {t.name}\n\n"
        f"{t.description[:1].upper()}{t.description[1:]}. {_direction(t)}; "
        f"payload {cls.SIZE} bytes, frame "
        f"{cls.SIZE + OVERHEAD} bytes, CRC_EXTRA 0x{cls.CRC_EXTRA:02X}."
    )
    if t in ACCEPTED_IN:
        head += f" Reply: {REPLIES.get(t, 'ACK or NACK')}."
    if not cls.WIRE:
        return head + " No payload."
    rows = []
    offset = 0
    for name, wire in cls.WIRE:
        size = struct.calcsize("<" + wire.code)
        kind = _STRUCT_TYPES.get(wire.code, "bytes")
        rows.append([
            str(offset), str(size), f"`{name}`", kind, wire.unit or "-",
            _range_text(wire.code), VALID_RANGES.get((t, name), "-"), wire.doc or "-",
        ])
        offset += size
    return head + "\n\n" + _table(
        ["offset", "size", "field", "type", "unit", "wire range", "valid", "meaning"], rows
    )


def render_messages() -> str:
    """One section per message, in type order: fields, struct codes, units, ranges."""
    return "\n\n".join(_message_section(REGISTRY[t]) for t in sorted(REGISTRY))


def _enum_table(table: type[enum.Enum], describe_member: Callable[[enum.Enum], str]) -> str:
    flag = issubclass(table, enum.IntFlag)
    digits = _FLAG_DIGITS.get(table, 4)
    rows = []
    for m in table:
        value = m.value
        code = (f"0x{value:0{digits}X}" if flag
                else (f"0x{value:02X}" if table is MsgType else str(value)))
        rows.append([code, f"`{m.name}`", describe_member(m)])
    title = f"#### {table.__name__}" + (" (bit flags)" if flag else "")
    return title + "\n\n" + _table(["value", "name", "meaning"], rows)


# Hex digits of each flag table: as wide as the field that carries it (TELEMETRY.flags is u8).
_FLAG_DIGITS: dict[type, int] = {TelemetryFlag: 2, Fault: 4, Capability: 4}

# Keyed by (table, name): IntEnum members of different tables compare equal by value.
_FLAG_DOCS: dict[tuple[type, str], str] = {
    (Capability, "CALIBRATION_TABLE"):
        "the pen stores a calibration table (CALIBRATION_READ, _WRITE)",
    (Capability, "FOOTSWITCH"): "a footswitch is fitted (TELEMETRY.flags FOOTSWITCH is meaningful; "
                                "SET_FOOTSWITCH REQUIRED is accepted)",
    (Capability, "TELEMETRY_1KHZ"): "telemetry up to 1 kHz",
    (Capability, "SIMULATED"): "a simulator, not a pen: records made with it are marked so",
    (TelemetryFlag, "NEEDLE_RUNNING"): "the needle motor is running",
    (TelemetryFlag, "FOOTSWITCH"): "the footswitch is pressed",
    (TelemetryFlag, "CARTRIDGE_PRESENT"): "a cartridge is fitted",
    (TelemetryFlag, "LEASE_ACTIVE"): "a lease is live (lease_remaining_ms > 0)",
}


def _member_doc(m: enum.Enum) -> str:
    if isinstance(m, Fault):
        return FAULT_DESCRIPTIONS[m]
    if (type(m), m.name) in _FLAG_DOCS:
        return _FLAG_DOCS[(type(m), m.name or "")]
    return getattr(m, "description", "")


CODE_TABLES: tuple[type[enum.Enum], ...] = (
    MsgType, NackReason, LimitField, Fault, FirmwareState, EventCode, FootswitchMode, Capability,
    TelemetryFlag,
)


def render_codes() -> str:
    """Every code table, as grbl publishes its codes: value, name, meaning."""
    return "\n\n".join(_enum_table(t, _member_doc) for t in CODE_TABLES)


def render_states() -> str:
    """Which command is accepted in which state, what it refuses with, and where it leads."""
    states = list(FirmwareState)
    rows = []
    for t in sorted(ACCEPTED_IN):
        cells = []
        for s in states:
            if s in ACCEPTED_IN[t]:
                after = TRANSITIONS.get(t, {}).get(s)
                if after is None or after == s:
                    cells.append("ok")
                else:
                    event = COMMAND_EVENTS.get(t)
                    early = transition(t, s, booted=False)  # IDLE before the boot completes
                    cells.append(f"ok -> {after.name}"
                                 + (f" ({early.name} before the boot completes)"
                                    if early is not None and early is not after else "")
                                 + (f", EVENT {event.name}" if event else ""))
            else:
                cells.append(f"NACK {refusal(s).name}")
        checks = ", ".join(r.name for r in EXTRA_CHECKS.get(t, ())) or "-"
        rows.append([f"`{MsgType(t).name}`", *cells, checks])
    return _table(["command", *[s.name for s in states], "then checked, in order"], rows)


def render_examples() -> str:
    """Every golden vector as a hex line, then three frames taken apart byte by byte."""
    vectors = load_vectors()
    rows = [[f"`{v['name']}`", v["type"], str(v["seq"]), f"`{v['hex']}`"] for v in vectors]
    out = [_table(["vector", "type", "seq", "frame (hex)"], rows)]
    for name in ("set_setpoints", "nack_out_of_limits_depth", "telemetry_running"):
        v = next(v for v in vectors if v["name"] == name)
        out.append(_breakdown(v["name"], bytes.fromhex(v["hex"])))
    return "\n\n".join(out)


def _breakdown(name: str, frame: bytes) -> str:
    f = decode_frame(frame)
    cls = type(f.message)
    size = cls.SIZE
    lines = [
        f"#### Example: `{name}`",
        "",
        "```",
        frame.hex(" "),
        "",
        f"{frame[0:2].hex(' '):<12} SYNC",
        f"{frame[2]:02x}{'':<10} LEN = {size}",
        f"{frame[3]:02x}{'':<10} SEQ = {f.seq}",
        f"{frame[4]:02x}{'':<10} TYPE = {MsgType(cls.TYPE).name}",
    ]
    pos = HEADER_SIZE
    for (fname, wire), (_, text) in zip(cls.WIRE, describe(f.message), strict=True):
        n = struct.calcsize("<" + wire.code)
        lines.append(f"{frame[pos:pos + n].hex(' '):<12} {fname} = {text}")
        pos += n
    crc = frame[pos:]
    lines += [
        f"{crc.hex(' '):<12} CRC = 0x{int.from_bytes(crc, 'little'):08x} (little-endian): "
        f"CRC-32 over {frame[2:pos].hex(' ')} {cls.CRC_EXTRA:02x} (CRC_EXTRA)",
        "```",
    ]
    return "\n".join(lines)


def render_duplicates() -> str:
    """Which commands enter the duplicate window, and how SEQ 0 is treated."""
    names = ", ".join(MsgType(t).name for t in sorted(DEDUPLICATED))
    seq0 = ", ".join(MsgType(t).name for t in sorted(ACTS_WITH_SEQ_0))
    return "\n".join([
        f"- Enter the window (with their reply, ACK or NACK alike): {names}.",
        "- Never enter it: ESTOP (every ESTOP acts) and IDENTIFY_REQUEST (it clears the window "
        "and is always answered afresh). A reboot clears the window too.",
        f"- A command with SEQ 0 is ignored (no effect, no reply), except {seq0}, which acts "
        "and is ACKed with SEQ 0.",
        "- A frame with a pen -> host TYPE (0x40 and up) received by the pen is ignored.",
    ])


def render_events() -> str:
    """Every cause of an EVENT: the commands that send one, and the pen's own changes."""
    rows = [
        [f"`{MsgType(t).name}` accepted and the state changes", "after its reply (ACK first)",
         f"`{e.name}`"]
        for t, e in COMMAND_EVENTS.items()
    ]
    rows += [[cause, change, f"`{e.name}`"] for cause, change, e in SPONTANEOUS_EVENTS]
    return _table(["cause", "state change / order", "EVENT"], rows)


def render_lifetimes() -> str:
    """What the pen keeps across stops, faults, reconnects and reboots."""
    rows = [[item, *cells] for item, cells in LIFETIMES.items()]
    return _table(["kept by the pen", *LIFETIME_EVENTS], rows)


def render_counts() -> str:
    """How many vectors each committed file holds, counted from the files (section 13)."""
    from firmware_protocol import scenarios  # its generator imports the catalogue, not this

    files = (("vectors.json", len(load_vectors()), "golden vectors", "frames, below"),
             (scenarios.SCENARIOS_FILE, len(scenarios.load(scenarios.SCENARIOS_FILE)),
              "scenario vectors", "behaviour"),
             (scenarios.DECODER_FILE, len(scenarios.load(scenarios.DECODER_FILE)),
              "decoder vectors", "stream decoding"))
    return "\n".join(f"- `firmware_protocol/{name}`: {n} **{what}** ({about})"
                      for name, n, what, about in files)


def render_ticks() -> str:
    """What one firmware tick does, in order (rules.TICK_ORDER)."""
    return "\n".join(f"{i}. {step[:1].upper()}{step[1:]}." for i, step in
                     enumerate(TICK_ORDER, 1))


def render_timing() -> str:
    """The link's numbers (firmware_protocol.timing)."""
    rows = [[f"`{name}`", str(value), unit, meaning] for name, value, unit, meaning in TIMING]
    return _table(["name", "value", "unit", "meaning"], rows)


SECTIONS: dict[str, Callable[[], str]] = {
    "identity": render_identity,
    "messages": render_messages,
    "codes": render_codes,
    "states": render_states,
    "duplicates": render_duplicates,
    "events": render_events,
    "lifetimes": render_lifetimes,
    "ticks": render_ticks,
    "timing": render_timing,
    "counts": render_counts,
    "scenario_pen": render_scenario_pen,
    "examples": render_examples,
}


def begin_marker(name: str) -> str:
    return f"<!-- BEGIN GENERATED {name}: python -m firmware_protocol.spec --write -->"


def end_marker(name: str) -> str:
    return f"<!-- END GENERATED {name} -->"


def extract(text: str, name: str) -> str:
    """The block between the markers of section `name` in `text`, without the markers."""
    m = re.search(
        re.escape(begin_marker(name)) + r"\n(.*?)\n" + re.escape(end_marker(name)), text, re.S
    )
    if m is None:
        raise ValueError(f"markers for section {name!r} not found")
    return m.group(1)


def refresh(text: str) -> str:
    """`text` with every generated block replaced by today's rendering."""
    for name, render in SECTIONS.items():
        block = f"{begin_marker(name)}\n{render()}\n{end_marker(name)}"
        pattern = re.escape(begin_marker(name)) + r".*?" + re.escape(end_marker(name))
        text, n = re.subn(pattern, block.replace("\\", "\\\\"), text, flags=re.S)
        if n != 1:
            raise MarkerError(f"expected one {name!r} block, found {n}")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", type=Path, help="refresh the blocks in FILE")
    group.add_argument("--check", metavar="FILE", type=Path, help="exit 1 if FILE is stale")
    args = ap.parse_args(argv)
    if args.write or args.check:  # a file it cannot use: one line, exit 1 (spec_file)
        return update(args.write or args.check, refresh, write=bool(args.write))
    for name, render in SECTIONS.items():
        print(f"{begin_marker(name)}\n{render()}\n{end_marker(name)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
