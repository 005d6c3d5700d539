"""Golden vectors: messages and their exact frames, the reference a firmware team tests against.

The committed `firmware_protocol/vectors.json` is the reference, not this generator: the tests
check every vector both ways (encode(fields) == hex, decode(hex) == fields), so a change to the
codec that alters a single byte fails them. Regenerate only for a deliberate catalogue change:

    python -m firmware_protocol.vectors --write

Each vector is `{name, seq, type, fields, hex}`: `type` is the MsgType name, `fields` the wire
integers (byte strings as lowercase hex), `hex` the whole frame from sync to CRC.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from firmware_protocol.codes import (
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
from firmware_protocol.describe import from_jsonable, to_jsonable
from firmware_protocol.frame import encode
from firmware_protocol.messages import (
    PROTOCOL_VERSION,
    REGISTRY,
    SCHEMA_HASH,
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
    Message,
    Nack,
    NeedleStart,
    NeedleStop,
    Ping,
    Pong,
    Retract,
    SetFootswitch,
    SetSetpoints,
    SetTelemetryRate,
    Telemetry,
)

VECTORS_FILE = "vectors.json"


def vectors_path() -> Path:
    """Where the committed vectors file is (inside the installed package)."""
    return Path(str(resources.files("firmware_protocol").joinpath(VECTORS_FILE)))


def load_vectors() -> list[dict[str, Any]]:
    return json.loads(vectors_path().read_text(encoding="utf-8"))


def vector_message(vector: dict[str, Any]) -> Message:
    """The message a vector describes, built from its type name and fields."""
    return from_jsonable(REGISTRY[MsgType[vector["type"]]], vector["fields"])


def _identify(**over: Any) -> Identify:
    base: dict[str, Any] = dict(
        protocol_version=PROTOCOL_VERSION,
        schema_hash=SCHEMA_HASH,
        fw_major=1,
        fw_minor=4,
        fw_patch=2,
        serial=b"SMP-000042".ljust(12, b"\0"),
        capabilities=int(Capability.CALIBRATION_TABLE | Capability.FOOTSWITCH),
        depth_min_um=-500,
        depth_max_um=2500,
        speed_min_centihz=3000,
        speed_max_centihz=15000,
        duty_min_permille=50,
        duty_max_permille=1000,
        period_min_us=20_000,
        period_max_us=1_000_000,
        current_max_ma=1500,
        temp_max_centideg_c=4500,
        lease_max_ms=2000,
        telemetry_max_hz=200,
    )
    base.update(over)
    return Identify(**base)


def _telemetry(**over: Any) -> Telemetry:
    base: dict[str, Any] = dict(
        telemetry_seq=1234,
        uptime_ms=61_500,
        state=FirmwareState.RUNNING,
        faults=0,
        flags=int(
            TelemetryFlag.NEEDLE_RUNNING
            | TelemetryFlag.FOOTSWITCH
            | TelemetryFlag.CARTRIDGE_PRESENT
            | TelemetryFlag.LEASE_ACTIVE
        ),
        depth_um=1195,
        depth_cmd_um=1200,
        speed_centihz=10012,
        current_ma=420,
        temp_centideg_c=3275,
        strokes=98_765,
        impressions=4321,
        lease_remaining_ms=180,
    )
    base.update(over)
    return Telemetry(**base)


def _cases() -> list[tuple[str, int, Message]]:
    """(name, seq, message). Host commands use seq 1..255; replies echo it; pen reports use 0."""
    u16, u32 = 0xFFFF, 0xFFFF_FFFF
    return [
        ("identify_request", 1, IdentifyRequest()),
        ("identify", 1, _identify()),
        ("identify_other_version", 1, _identify(protocol_version=2, schema_hash=0x1234ABCD)),
        ("ping", 2, Ping(token=0xDEADBEEF)),
        ("pong", 2, Pong(token=0xDEADBEEF)),
        ("set_setpoints", 3, SetSetpoints(1200, 10000, 400, 125_000)),
        ("set_setpoints_negative_depth", 4, SetSetpoints(-500, 3000, 50, 20_000)),
        ("set_setpoints_max_values", 5, SetSetpoints(0x7FFF, u16, u16, u32)),
        ("set_setpoints_min_values", 6, SetSetpoints(-0x8000, 0, 0, 0)),
        ("ack_set_setpoints", 3, Ack(MsgType.SET_SETPOINTS)),
        ("nack_out_of_limits_depth", 5,
         Nack(MsgType.SET_SETPOINTS, NackReason.OUT_OF_LIMITS, LimitField.DEPTH)),
        ("arm", 7, Arm()),
        ("disarm", 8, Disarm()),
        ("lease_renew", 9, LeaseRenew(lease_ms=250)),
        ("lease_renew_65535_must_nack", 10, LeaseRenew(lease_ms=u16)),  # > any lease_max_ms
        ("needle_start", 11, NeedleStart()),
        ("nack_no_lease", 11, Nack(MsgType.NEEDLE_START, NackReason.NO_LEASE, 0)),
        ("needle_stop", 12, NeedleStop()),
        ("retract", 13, Retract()),
        ("estop", 14, EStop()),
        ("ack_estop", 14, Ack(MsgType.ESTOP)),
        ("clear_faults", 15, ClearFaults()),
        ("nack_condition_active", 15,
         Nack(MsgType.CLEAR_FAULTS, NackReason.CONDITION_ACTIVE, 0)),
        ("set_telemetry_rate", 16, SetTelemetryRate(rate_hz=50)),
        ("set_telemetry_rate_off", 17, SetTelemetryRate(rate_hz=0)),
        ("calibration_read", 18, CalibrationRead()),
        ("calibration_table", 18, CalibrationTable.from_points(
            [(0, 40), (500, 530), (1000, 1010), (1500, 1495), (2000, 1980)], 1_767_225_600)),
        ("calibration_table_empty", 19, CalibrationTable.from_points([], 0)),
        # all 8 points; the first commands above the skin (a negative i16), and its true
        # depth is the surface: a true depth is never negative (docs/protocol.md section 7)
        ("calibration_write_full", 20, CalibrationWrite.from_points(
            [(-500, 0), (0, 25), (400, 420), (800, 812), (1200, 1204), (1600, 1590),
             (2000, 1975), (2500, 2460)], 1_767_225_600)),
        ("telemetry_running", 0, _telemetry()),
        ("telemetry_fault_negative_depth", 0, _telemetry(
            telemetry_seq=u32, uptime_ms=u32, state=FirmwareState.FAULT,
            faults=int(Fault.OVERCURRENT | Fault.LEASE_EXPIRED), flags=int(
                TelemetryFlag.CARTRIDGE_PRESENT), depth_um=-250, depth_cmd_um=0,
            speed_centihz=0, current_ma=u16, temp_centideg_c=-1050, strokes=u32,
            impressions=u32, lease_remaining_ms=0)),
        ("event_booted_power_reset", 0, Event(
            EventCode.BOOTED, FirmwareState.FAULT, int(Fault.POWER_RESET), 50)),  # BOOT_MAX_MS
        ("event_lease_expired", 0, Event(
            EventCode.FAULT_LATCHED, FirmwareState.FAULT, int(Fault.LEASE_EXPIRED), 123_456)),
        ("seq_255", 255, Ping(token=0)),
        ("set_footswitch_required", 21, SetFootswitch(FootswitchMode.REQUIRED)),
        ("set_footswitch_off", 22, SetFootswitch(FootswitchMode.OFF)),
        ("nack_footswitch_up", 23, Nack(MsgType.NEEDLE_START, NackReason.FOOTSWITCH_UP, 0)),
        ("event_footswitch_released", 0, Event(
            EventCode.FOOTSWITCH_RELEASED, FirmwareState.ARMED, 0, 98_765)),
    ]


def build_vectors() -> list[dict[str, Any]]:
    out = []
    for name, seq, msg in _cases():
        out.append({
            "name": name,
            "seq": seq,
            "type": MsgType(msg.TYPE).name,
            "fields": to_jsonable(msg),
            "hex": encode(msg, seq).hex(),
        })
    return out


def render_json(vectors: list[dict[str, Any]]) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"overwrite {VECTORS_FILE}")
    args = ap.parse_args(argv)
    text = render_json(build_vectors())
    if args.write:
        path = Path(__file__).with_name(VECTORS_FILE)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {len(build_vectors())} vectors to {path}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
