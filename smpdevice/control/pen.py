"""What the host knows of a pen, in physical units: identity, hard limits, telemetry, setpoints."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from firmware_protocol import units
from firmware_protocol.codes import Capability, Fault, FirmwareState, TelemetryFlag
from firmware_protocol.messages import Identify, Telemetry
from smpdevice.errors import SmpError

_NEEDLE_RUNNING = int(TelemetryFlag.NEEDLE_RUNNING)
_FOOTSWITCH = int(TelemetryFlag.FOOTSWITCH)
_CARTRIDGE_PRESENT = int(TelemetryFlag.CARTRIDGE_PRESENT)
_LEASE_ACTIVE = int(TelemetryFlag.LEASE_ACTIVE)


@dataclass(frozen=True)
class HardLimits:
    """The pen's own limits from the handshake. Depth is actuator travel, not depth in skin."""

    depth_min_mm: float
    depth_max_mm: float
    speed_min_hz: float
    speed_max_hz: float
    duty_min_pct: float
    duty_max_pct: float
    period_min_ms: float
    period_max_ms: float
    current_max_a: float
    temp_max_c: float
    lease_max_ms: int
    telemetry_max_hz: int


@dataclass(frozen=True)
class PenIdentity:
    serial: str
    firmware_version: str
    protocol_version: int
    schema_hash: int
    capabilities: Capability
    limits: HardLimits

    @classmethod
    def from_message(cls, m: Identify) -> PenIdentity:
        limits = HardLimits(
            depth_min_mm=units.um_to_mm(m.depth_min_um),
            depth_max_mm=units.um_to_mm(m.depth_max_um),
            speed_min_hz=units.centihz_to_hz(m.speed_min_centihz),
            speed_max_hz=units.centihz_to_hz(m.speed_max_centihz),
            duty_min_pct=units.permille_to_pct(m.duty_min_permille),
            duty_max_pct=units.permille_to_pct(m.duty_max_permille),
            period_min_ms=units.us_to_ms(m.period_min_us),
            period_max_ms=units.us_to_ms(m.period_max_us),
            current_max_a=units.ma_to_a(m.current_max_ma),
            temp_max_c=units.centideg_to_c(m.temp_max_centideg_c),
            lease_max_ms=m.lease_max_ms,
            telemetry_max_hz=m.telemetry_max_hz,
        )
        return cls(
            serial=m.serial_str,
            firmware_version=m.firmware_version,
            protocol_version=m.protocol_version,
            schema_hash=m.schema_hash,
            capabilities=Capability(m.capabilities),
            limits=limits,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["capabilities"] = [c.name for c in Capability if c in self.capabilities]
        d["schema_hash"] = f"0x{self.schema_hash:08x}"
        return d


class NotConnected(SmpError):
    """The pen is not connected (never was, or went away before it was used)."""

    def __init__(self, port_url: str) -> None:
        super().__init__(f"the pen on {port_url} is not connected. Check the cable and power, "
                         "then connect again.")


def connected(identity: PenIdentity | None, port_url: str) -> PenIdentity:
    """`identity`, or NotConnected: a controller that never connected has none."""
    if identity is None:
        raise NotConnected(port_url)
    return identity


@dataclass(frozen=True)
class Setpoints:
    """What the host asked for. depth_mm is depth in skin (before calibration)."""

    depth_mm: float
    speed_hz: float
    duty_pct: float
    period_ms: float


@dataclass(frozen=True, slots=True)
class PenTelemetry:
    """One telemetry frame in physical units."""

    received_at_s: float
    telemetry_seq: int
    uptime_ms: int
    state: FirmwareState
    faults: Fault
    needle_running: bool
    footswitch: bool
    cartridge_present: bool
    lease_active: bool
    actuator_mm: float
    actuator_cmd_mm: float
    depth_mm: float | None  # depth in skin through the calibration; None when uncalibrated
    speed_hz: float
    current_a: float
    temp_c: float
    strokes: int
    impressions: int
    lease_remaining_ms: int

    @classmethod
    def from_message(cls, m: Telemetry, calibration=None,
                     received_at_s: float | None = None) -> PenTelemetry:
        actuator_mm = m.depth_um / 1000
        flags = m.flags  # tested against plain ints: an IntFlag `&` costs 30x (every frame)
        return cls(
            received_at_s=time.monotonic() if received_at_s is None else received_at_s,
            telemetry_seq=m.telemetry_seq,
            uptime_ms=m.uptime_ms,
            state=FirmwareState(m.state),
            faults=Fault(m.faults),
            needle_running=bool(flags & _NEEDLE_RUNNING),
            footswitch=bool(flags & _FOOTSWITCH),
            cartridge_present=bool(flags & _CARTRIDGE_PRESENT),
            lease_active=bool(flags & _LEASE_ACTIVE),
            actuator_mm=actuator_mm,
            actuator_cmd_mm=m.depth_cmd_um / 1000,
            depth_mm=None if calibration is None else calibration.to_depth_mm(actuator_mm),
            speed_hz=m.speed_centihz / 100,
            current_a=m.current_ma / 1000,
            temp_c=m.temp_centideg_c / 100,
            strokes=m.strokes,
            impressions=m.impressions,
            lease_remaining_ms=m.lease_remaining_ms,
        )
