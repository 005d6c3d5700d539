"""Generate the firmware team's C99 codec from the one catalogue (as MAVLink's generator does).

`generate_c_codec()` returns `{file name: text}` for a header and a source: message structs
(units in the field names), pack/unpack and encode per message, CRC-32 and CRC_EXTRA, a
byte-at-a-time stream parser with a fixed buffer (no heap), every code table with its names
and descriptions, the state rules of `rules.py`, the link timing, the schema hash and protocol
version. Pure: it writes nothing (`smp protocol c-codec --out DIR` does). Usage and the
parser's contract: docs/protocol.md, "For firmware authors".
"""

from __future__ import annotations

import enum
import re

from firmware_protocol import rules, timing
from firmware_protocol.c_runtime import RUNTIME_C, RUNTIME_H
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.frame import CRC_SIZE, HEADER_SIZE, MAX_FRAME, MAX_PAYLOAD, OVERHEAD, SYNC
from firmware_protocol.messages import (
    CALIBRATION_POINTS,
    PROTOCOL_VERSION,
    REGISTRY,
    SCHEMA_HASH,
    Message,
)
from firmware_protocol.spec import CODE_TABLES, _member_doc

HEADER_NAME = "smp_protocol.h"
SOURCE_NAME = "smp_protocol.c"

# struct code -> (C type, bytes, signed)
_INT_TYPES = {"B": ("uint8_t", 1, False), "b": ("int8_t", 1, True),
              "H": ("uint16_t", 2, False), "h": ("int16_t", 2, True),
              "I": ("uint32_t", 4, False), "i": ("int32_t", 4, True)}
_BYTES = re.compile(r"^(\d+)s$")

# Prefix of each code table's constants and functions.
_TABLE_NAMES: dict[str, tuple[str, str]] = {
    "MsgType": ("SMP_MSG_", "msg_type"), "NackReason": ("SMP_NACK_", "nack_reason"),
    "LimitField": ("SMP_LIMIT_", "limit_field"), "Fault": ("SMP_FAULT_", "fault"),
    "FirmwareState": ("SMP_STATE_", "state"), "EventCode": ("SMP_EVENT_", "event"),
    "FootswitchMode": ("SMP_FOOTSWITCH_", "footswitch_mode"),
    "Capability": ("SMP_CAP_", "capability"), "TelemetryFlag": ("SMP_TFLAG_", "telemetry_flag"),
}


def _c_string(text: str) -> str:
    """A C string literal; non-ASCII as octal escapes (never ambiguous with what follows)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    return "/* " + text.replace("*/", "* /") + " */"


def _name(cls: type[Message]) -> str:
    return MsgType(cls.TYPE).name.lower()


def _fields(cls: type[Message]) -> list[tuple[str, str, int, str]]:
    """(name, C declaration, size, struct code) per wire field, in wire order."""
    out = []
    for name, wire in cls.WIRE:
        if wire.code in _INT_TYPES:
            ctype, size, _ = _INT_TYPES[wire.code]
            out.append((name, f"{ctype} {name};", size, wire.code))
        elif (match := _BYTES.match(wire.code)) is not None:
            size = int(match.group(1))
            out.append((name, f"uint8_t {name}[{size}];", size, "s"))
        else:
            raise ValueError(f"{cls.__name__}.{name}: struct code {wire.code!r} has no C mapping")
    if sum(size for _, _, size, _ in out) != cls.SIZE:
        raise ValueError(f"{cls.__name__}: fields do not add up to its {cls.SIZE}-byte payload")
    return out


def _messages() -> list[type[Message]]:
    return [REGISTRY[t] for t in sorted(REGISTRY)]


# ------------------------------------------------------------------------------ header parts


def _defines() -> str:
    lines = [
        f"#define SMP_PROTOCOL_VERSION {PROTOCOL_VERSION}u",
        f"#define SMP_SCHEMA_HASH 0x{SCHEMA_HASH:08X}u "
        + _comment("CRC-32 of the catalogue; IDENTIFY.schema_hash"),
        f"#define SMP_SYNC0 0x{SYNC[0]:02X}u",
        f"#define SMP_SYNC1 0x{SYNC[1]:02X}u",
        f"#define SMP_HEADER_SIZE {HEADER_SIZE}u " + _comment("SYNC SYNC LEN SEQ TYPE"),
        f"#define SMP_CRC_SIZE {CRC_SIZE}u",
        f"#define SMP_OVERHEAD {OVERHEAD}u",
        f"#define SMP_MAX_PAYLOAD {MAX_PAYLOAD}u",
        f"#define SMP_MAX_FRAME {MAX_FRAME}u " + _comment("a buffer this size holds any frame"),
        f"#define SMP_CALIBRATION_POINTS {CALIBRATION_POINTS}u",
        "",
        _comment("Link timing (docs/protocol.md, section 12)"),
    ]
    for name, value, unit, meaning in timing.TIMING:
        lines.append(f"#define SMP_{name} {value}u " + _comment(f"{unit}: {meaning}"))
    return "\n".join(lines)


def _code_tables_h() -> str:
    parts = []
    for table in CODE_TABLES:
        prefix, fn = _TABLE_NAMES[table.__name__]
        flag = issubclass(table, enum.Flag)
        rows = []
        for m in table:
            code = int(m.value)
            value = f"0x{code:04X}" if flag else (
                f"0x{code:02X}" if table is MsgType else str(code))
            rows.append(f"    {prefix}{m.name} = {value}, {_comment(_member_doc(m))}")
        rows[-1] = rows[-1].replace(", /*", " /*", 1)
        what = "bit" if flag else "code"
        parts.append(
            f"{_comment(table.__name__ + (' (bit flags)' if flag else ''))}\n"
            f"enum smp_{fn} {{\n" + "\n".join(rows) + "\n};\n"
            f"{_comment(f'Name and description of a {what}; NULL if unknown.')}\n"
            f"const char *smp_{fn}_name(unsigned {what});\n"
            f"const char *smp_{fn}_description(unsigned {what});"
        )
    return "\n\n".join(parts)


def _structs_h() -> str:
    parts = []
    for cls in _messages():
        name = _name(cls)
        head = (f"#define SMP_SIZE_{name.upper()} {cls.SIZE}u\n"
                f"#define SMP_CRC_EXTRA_{name.upper()} 0x{cls.CRC_EXTRA:02X}u")
        if not cls.WIRE:
            parts.append(f"{head}\n{_comment(f'{name}: no payload')}\n"
                         f"size_t smp_encode_{name}(uint8_t seq, uint8_t *out, size_t out_size);")
            continue
        rows = []
        for (_, decl, _, _), (_, wire) in zip(_fields(cls), cls.WIRE, strict=True):
            note = "; ".join(x for x in (wire.unit, wire.doc) if x)
            rows.append(f"    {decl}" + (f" {_comment(note)}" if note else ""))
        parts.append(
            f"{head}\ntypedef struct {{\n" + "\n".join(rows) + f"\n}} smp_{name}_t;\n"
            f"void smp_pack_{name}(const smp_{name}_t *m, uint8_t *payload);\n"
            f"void smp_unpack_{name}(const uint8_t *payload, smp_{name}_t *m);\n"
            f"size_t smp_encode_{name}(const smp_{name}_t *m, uint8_t seq, uint8_t *out, "
            "size_t out_size);"
        )
    members = "\n".join(f"        smp_{_name(c)}_t {_name(c)};" for c in _messages() if c.WIRE)
    parts.append(
        _comment("A decoded frame: `msg` holds the member named after `type` (none for a "
                 "message without payload).") + "\n"
        "typedef struct {\n    uint8_t seq;\n    uint8_t type; /* enum smp_msg_type */\n"
        f"    union {{\n{members}\n    }} msg;\n}} smp_frame_t;\n\n"
        "/* Payload size / CRC_EXTRA of a type; -1 if the type is not in the catalogue. */\n"
        "int smp_payload_size(uint8_t type);\nint smp_crc_extra(uint8_t type);\n"
        "/* Write / read the payload of frame->type; return its size, -1 if unknown. */\n"
        "int smp_pack_payload(const smp_frame_t *frame, uint8_t *payload);\n"
        "int smp_unpack_payload(uint8_t type, const uint8_t *payload, smp_frame_t *frame);\n"
        "/* Each field of the frame's message in wire order: integers as `value` (bytes NULL),\n"
        " * byte strings as `bytes`/`n_bytes` (value 0). For logs and test harnesses. */\n"
        "typedef void (*smp_field_visitor)(void *ctx, const char *name, int64_t value,\n"
        "                                  const uint8_t *bytes, size_t n_bytes);\n"
        "void smp_visit_fields(const smp_frame_t *frame, smp_field_visitor visit, void *ctx);"
    )
    return "\n\n".join(parts)


_RULES_H = """\
/* The state rules (docs/protocol.md section 7, generated from rules.py). */
/* Bit (1 << state) set: `type` is accepted in that state. 0 for a pen->host or unknown type. */
uint8_t smp_rule_accepted_states(uint8_t type);
/* The NACK reason for a command not accepted in `state`. */
uint8_t smp_rule_refusal(uint8_t state);
/* The state after an accepted command, or -1 if it does not change the state. The caller
 * maps IDLE to BOOTING until its boot completes (an E-stop cleared while booting: section 10). */
int smp_rule_transition(uint8_t type, uint8_t state);
/* The further checks after the state, in order (enum smp_nack_reason); count in *n. */
const uint8_t *smp_rule_extra_checks(uint8_t type, size_t *n);
/* 1 if the command enters the duplicate window / acts with SEQ 0 / clears the window. */
int smp_rule_deduplicated(uint8_t type);
int smp_rule_acts_with_seq_0(uint8_t type);
int smp_rule_clears_window(uint8_t type);
/* 1 if the command, received before the last ESTOP of its read, is NACKed ESTOP_LATCHED and
 * not executed (CLEAR_FAULTS: it must not undo that E-stop; the ESTOPs act first: section 9). */
int smp_rule_superseded_by_estop(uint8_t type);"""


def _header() -> str:
    return "\n\n".join([
        _comment(f"Generated from the smpdevice message catalogue by firmware_protocol/c_codec.py"
                 f" (schema 0x{SCHEMA_HASH:08X}). Do not edit: regenerate with "
                 "`smp protocol c-codec --out DIR`. Spec: docs/protocol.md."),
        "#ifndef SMP_PROTOCOL_H\n#define SMP_PROTOCOL_H\n\n#include <stddef.h>\n"
        "#include <stdint.h>",
        _defines(), _code_tables_h(), _structs_h(), _RULES_H, RUNTIME_H.strip(),
        "#endif /* SMP_PROTOCOL_H */\n",
    ])


# ------------------------------------------------------------------------------ source parts

# Little-endian access and two's complement without implementation-defined conversions;
# keyed by the struct codes that need them (C warns about unused static functions).
_HELPERS: dict[str, str] = {
    "u16": "static void smp_put_u16(uint8_t *p, uint16_t v)\n"
           "{\n    p[0] = (uint8_t)v;\n    p[1] = (uint8_t)(v >> 8);\n}\n"
           "static uint16_t smp_get_u16(const uint8_t *p)\n"
           "{\n    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));\n}",
    "u32": "static void smp_put_u32(uint8_t *p, uint32_t v)\n{\n    p[0] = (uint8_t)v;\n"
           "    p[1] = (uint8_t)(v >> 8);\n    p[2] = (uint8_t)(v >> 16);\n"
           "    p[3] = (uint8_t)(v >> 24);\n}\n"
           "static uint32_t smp_get_u32(const uint8_t *p)\n{\n"
           "    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)\n"
           "        | ((uint32_t)p[3] << 24);\n}",
    "b": "static uint8_t smp_from_i8(int8_t v)\n{\n    return (uint8_t)(v < 0 ? 256 + v : v);\n}\n"
         "static int8_t smp_to_i8(uint8_t v)\n"
         "{\n    return (int8_t)((v & 0x80u) ? (int)v - 256 : (int)v);\n}",
    "h": "static uint16_t smp_from_i16(int16_t v)\n"
         "{\n    return (uint16_t)(v < 0 ? 65536L + v : (long)v);\n}\n"
         "static int16_t smp_to_i16(uint16_t v)\n"
         "{\n    return (int16_t)((v & 0x8000u) ? (long)v - 65536L : (long)v);\n}",
    "i": "static uint32_t smp_from_i32(int32_t v)\n"
         "{\n    return v < 0 ? (uint32_t)(-(v + 1)) ^ 0xFFFFFFFFu : (uint32_t)v;\n}\n"
         "static int32_t smp_to_i32(uint32_t v)\n"
         "{\n    return (v & 0x80000000u) ? -(int32_t)(v ^ 0xFFFFFFFFu) - 1 : (int32_t)v;\n}",
}


def _helpers() -> str:
    codes = {code for c in _messages() for _, _, _, code in _fields(c)}
    need = ["u32"]  # the CRC field
    if codes & {"H", "h"}:
        need.append("u16")
    need += [k for k in ("b", "h", "i") if k in codes]
    return "\n".join(_HELPERS[k] for k in need)

_PUT = {"B": "p[{o}] = m->{n};", "b": "p[{o}] = smp_from_i8(m->{n});",
        "H": "smp_put_u16(p + {o}, m->{n});", "h": "smp_put_u16(p + {o}, smp_from_i16(m->{n}));",
        "I": "smp_put_u32(p + {o}, m->{n});", "i": "smp_put_u32(p + {o}, smp_from_i32(m->{n}));",
        "s": "memcpy(p + {o}, m->{n}, {s}u);"}
_GET = {"B": "m->{n} = p[{o}];", "b": "m->{n} = smp_to_i8(p[{o}]);",
        "H": "m->{n} = smp_get_u16(p + {o});", "h": "m->{n} = smp_to_i16(smp_get_u16(p + {o}));",
        "I": "m->{n} = smp_get_u32(p + {o});", "i": "m->{n} = smp_to_i32(smp_get_u32(p + {o}));",
        "s": "memcpy(m->{n}, p + {o}, {s}u);"}


def _crc_table() -> str:
    values = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        values.append(f"0x{c:08X}u")
    rows = [", ".join(values[i : i + 6]) for i in range(0, 256, 6)]
    return ("static const uint32_t smp_crc32_table[256] = {\n    "
            + ",\n    ".join(rows) + "\n};")


def _message_functions() -> str:
    parts = []
    for cls in _messages():
        name = _name(cls)
        frame = (f"    smp_frame_t f;\n    memset(&f, 0, sizeof f);\n    f.seq = seq;\n"
                 f"    f.type = SMP_MSG_{name.upper()};\n")
        if not cls.WIRE:
            parts.append(f"size_t smp_encode_{name}(uint8_t seq, uint8_t *out, size_t out_size)\n"
                         f"{{\n{frame}    return smp_encode(&f, out, out_size);\n}}")
            continue
        put, get, offset = [], [], 0
        for fname, _, size, code in _fields(cls):
            put.append("    " + _PUT[code].format(o=offset, n=fname, s=size))
            get.append("    " + _GET[code].format(o=offset, n=fname, s=size))
            offset += size
        parts.append(
            f"void smp_pack_{name}(const smp_{name}_t *m, uint8_t *payload)\n{{\n"
            "    uint8_t *p = payload;\n" + "\n".join(put) + "\n}\n\n"
            f"void smp_unpack_{name}(const uint8_t *payload, smp_{name}_t *m)\n{{\n"
            "    const uint8_t *p = payload;\n" + "\n".join(get) + "\n}\n\n"
            f"size_t smp_encode_{name}(const smp_{name}_t *m, uint8_t seq, uint8_t *out, "
            f"size_t out_size)\n{{\n{frame}    f.msg.{name} = *m;\n"
            "    return smp_encode(&f, out, out_size);\n}"
        )
    return "\n\n".join(parts)


def _switch(fn: str, arg: str, cases: list[tuple[str, str]], default: str) -> str:
    body = "".join(f"    case {k}: {v}\n" for k, v in cases)
    return f"{fn}\n{{\n    switch ({arg}) {{\n{body}    default: {default}\n    }}\n}}"


def _dispatch() -> str:
    msgs = _messages()
    sizes = [(f"SMP_MSG_{_name(c).upper()}", f"return {c.SIZE};") for c in msgs]
    extra = [(f"SMP_MSG_{_name(c).upper()}", f"return 0x{c.CRC_EXTRA:02X};") for c in msgs]
    pack = [(f"SMP_MSG_{_name(c).upper()}",
             (f"smp_pack_{_name(c)}(&frame->msg.{_name(c)}, payload); " if c.WIRE else "")
             + f"return {c.SIZE};") for c in msgs]
    unpack = [(f"SMP_MSG_{_name(c).upper()}",
               (f"smp_unpack_{_name(c)}(payload, &frame->msg.{_name(c)}); " if c.WIRE else "")
               + f"return {c.SIZE};") for c in msgs]
    visit = []
    for c in msgs:
        if not c.WIRE:
            continue
        calls = []
        for fname, _, n_bytes, code in _fields(c):
            ref = f"frame->msg.{_name(c)}.{fname}"
            calls.append(f'visit(ctx, "{fname}", 0, {ref}, {n_bytes}u);' if code == "s"
                         else f'visit(ctx, "{fname}", (int64_t){ref}, NULL, 0u);')
        visit.append((f"SMP_MSG_{_name(c).upper()}",
                      "\n        ".join(calls) + "\n        break;"))
    return "\n\n".join([
        _switch("int smp_payload_size(uint8_t type)", "type", sizes, "return -1;"),
        _switch("int smp_crc_extra(uint8_t type)", "type", extra, "return -1;"),
        _switch("int smp_pack_payload(const smp_frame_t *frame, uint8_t *payload)",
                "frame->type", pack, "return -1;"),
        _switch("int smp_unpack_payload(uint8_t type, const uint8_t *payload, "
                "smp_frame_t *frame)", "type", unpack, "return -1;"),
        _switch("void smp_visit_fields(const smp_frame_t *frame, smp_field_visitor visit, "
                "void *ctx)", "frame->type", visit, "break;"),
    ])


def _code_tables_c() -> str:
    parts = []
    for table in CODE_TABLES:
        prefix, fn = _TABLE_NAMES[table.__name__]
        what = "bit" if issubclass(table, enum.Flag) else "code"
        names = [(f"{prefix}{m.name}", f"return {_c_string(m.name or '')};") for m in table]
        docs = [(f"{prefix}{m.name}", f"return {_c_string(_member_doc(m))};") for m in table]
        parts.append(_switch(f"const char *smp_{fn}_name(unsigned {what})", what, names,
                             "return NULL;"))
        parts.append(_switch(f"const char *smp_{fn}_description(unsigned {what})", what, docs,
                             "return NULL;"))
    return "\n\n".join(parts)


def _rules_c() -> str:
    def t(x: MsgType) -> str:
        return f"SMP_MSG_{x.name}"

    def s(x: FirmwareState) -> str:
        return f"SMP_STATE_{x.name}"

    accepted = [(t(k), f"return 0x{sum(1 << int(x) for x in v):02X}u;")
                for k, v in sorted(rules.ACCEPTED_IN.items())]
    refusal = [(s(x), f"return SMP_NACK_{rules.refusal(x).name};") for x in FirmwareState]
    transition = []
    for k, moves in sorted(rules.TRANSITIONS.items()):
        inner = " ".join(f"if (state == {s(a)}) return {s(b)};" for a, b in moves.items())
        transition.append((t(k), inner + " return -1;"))
    checks = []
    for k, reasons in sorted(rules.EXTRA_CHECKS.items()):
        arr = ", ".join(f"SMP_NACK_{r.name}" for r in reasons)
        checks.append((t(k), f"{{ static const uint8_t c[] = {{{arr}}}; *n = {len(reasons)}u; "
                             "return c; }"))

    def member(fn: str, items: frozenset) -> str:
        return _switch(f"int {fn}(uint8_t type)", "type",
                       [(t(x), "return 1;") for x in sorted(items)], "return 0;")

    return "\n\n".join([
        _switch("uint8_t smp_rule_accepted_states(uint8_t type)", "type", accepted,
                "return 0u;"),
        _switch("uint8_t smp_rule_refusal(uint8_t state)", "state", refusal,
                f"return SMP_NACK_{rules.refusal(FirmwareState.IDLE).name};"),
        _switch("int smp_rule_transition(uint8_t type, uint8_t state)", "type", transition,
                "return -1;"),
        _switch("const uint8_t *smp_rule_extra_checks(uint8_t type, size_t *n)", "type", checks,
                "*n = 0u; return NULL;"),
        member("smp_rule_deduplicated", rules.DEDUPLICATED),
        member("smp_rule_acts_with_seq_0", rules.ACTS_WITH_SEQ_0),
        member("smp_rule_clears_window", rules.CLEARS_WINDOW),
        member("smp_rule_superseded_by_estop", rules.SUPERSEDED_BY_ESTOP),
    ])


def _source() -> str:
    return "\n\n".join([
        _comment("Generated by firmware_protocol/c_codec.py; do not edit."),
        f'#include "{HEADER_NAME}"\n\n#include <string.h>',
        _helpers(), _crc_table(), _dispatch(), _message_functions(), _code_tables_c(),
        _rules_c(), RUNTIME_C.strip() + "\n",
    ])


def generate_c_codec() -> dict[str, str]:
    """{file name: text} of the C99 codec for today's catalogue (header first)."""
    return {HEADER_NAME: _header(), SOURCE_NAME: _source()}
