"""The controller's options, checked before any port is opened or any frame is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from smpdevice import checks
from smpdevice.control.calibration import Calibration, checked_whole
from smpdevice.control.footswitch import FootswitchError, footswitch_setting
from smpdevice.control.pen import Setpoints
from smpdevice.control.zones import FrozenEnvelope, frozen_envelope
from smpdevice.envelope import DEFAULT_ZONES, NumberError, ZoneEnvelope
from smpdevice.errors import SmpError
from smpdevice.link.clock import MONOTONIC, Clock
from smpdevice.transport import DEFAULT_PORT

DEFAULT_LEASE_MS = 500
DEFAULT_TELEMETRY_HZ = 100
# The lease is renewed every quarter lease: shorter than this, scheduling jitter alone lapses it.
# The top is the protocol's (LEASE_RENEW.lease_ms is a u16); the pen may grant less.
LEASE_RANGE_MS = (50, 65535)
TELEMETRY_RANGE_HZ = (1, 65535)  # at least 1: telemetry is also how the host knows the pen is there
BAUD_RANGE = (50, 12_000_000)
TIMEOUT_RANGE_S = (0.0, 60.0)  # waits for the actuator, the motor, a state
_SETPOINT_UNITS = {"depth_mm": "mm", "speed_hz": "Hz", "duty_pct": "%", "period_ms": "ms"}
# Each setpoint's (lowest, highest) field in a ZoneEnvelope: what a refusal names as allowed.
_ZONE_FIELDS = {"depth_mm": ("epidermal_floor_mm", "dermal_ceiling_mm"),
                "speed_hz": ("speed_min_hz", "speed_max_hz"),
                "duty_pct": ("duty_min_pct", "duty_max_pct"),
                "period_ms": ("period_min_ms", "period_max_ms")}


class SetpointNumberError(NumberError, checks.InvalidArgument):
    """A setpoint that is not a finite number (NaN, infinity, a bool, text, a Decimal, a huge
    integer), its message naming the active zone's range: the `NumberError` (a `ValueError`)
    docs/integration.md names for it, and the `InvalidArgument` every other checked argument
    raises. Nothing was sent."""


class ControllerOptions:
    """Port, lease, telemetry rate, zones, calibration and clock of a `PenController`."""

    def __init__(
        self,
        port: str = DEFAULT_PORT,
        *,
        calibration: Calibration | None = None,
        zones: Mapping[str, ZoneEnvelope] | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        telemetry_hz: int = DEFAULT_TELEMETRY_HZ,
        baudrate: int = 115200,
        clock: Clock = MONOTONIC,
        footswitch: str | None = None,
    ) -> None:
        checks.text("port", port, max_len=1024)
        checked_whole(calibration)
        checks.instance("zones", zones, (Mapping, type(None)),
                        "a dict of zone name to ZoneEnvelope")
        for name, zone in (zones or {}).items():
            checks.text("zone name", name, max_len=64)
            checks.instance(f"zones[{name!r}]", zone, ZoneEnvelope, "a ZoneEnvelope")
        checks.whole_number("lease_ms", lease_ms, *LEASE_RANGE_MS, unit="ms")
        checks.whole_number("telemetry_hz", telemetry_hz, *TELEMETRY_RANGE_HZ, unit="Hz")
        checks.whole_number("baudrate", baudrate, *BAUD_RANGE, unit="baud")
        checks.instance("clock", clock, Clock, "a Clock (now(), is_virtual)")
        # The station's setting (smpdevice.config: option > SMP_FOOTSWITCH > config file >
        # "optional") unless the caller says: an installation setting every tool obeys.
        self._footswitch = footswitch_setting(footswitch)
        self.port_url = port
        self.baudrate = baudrate
        self.lease_ms = lease_ms
        self.telemetry_hz = telemetry_hz
        # Each zone checked whole again (a model_copy skips every check) into a read-only
        # mapping: what the guard uses cannot change after this (review 9a R04).
        self._zones = frozen_envelope(zones or DEFAULT_ZONES)
        self.clock = clock
        self._clock_given = clock is not MONOTONIC  # else a pensim:// pen's own may be adopted
        self._calibration = calibration
        self._cal_actuator_mm: float | None = None
        self._setup()

    @property
    def zones(self) -> FrozenEnvelope:
        """The zones (and plan limits) this controller checks every setpoint against: each
        checked whole when the controller was made, read-only since."""
        return self._zones

    @zones.setter
    def zones(self, _value: object) -> None:
        raise SmpError("a controller's zones are fixed when it is made (each checked whole, "
                       "docs/safety.md): connect a new controller with zones=... instead")

    @property
    def footswitch(self) -> str:
        """The footswitch mode (required | optional | off) sent before every ARM: fixed when
        the controller is made, as every session's header records it (docs/safety.md)."""
        return self._footswitch

    @footswitch.setter
    def footswitch(self, value: object) -> None:
        raise FootswitchError(
            f"footswitch={value!r:.40} is refused: a controller's footswitch mode is fixed "
            f"when it is made (it is {self._footswitch!r}, in every session's header); "
            "connect a new controller with footswitch=... instead (docs/safety.md)")

    if TYPE_CHECKING:  # provided by RequestsMixin (a base of PenController)
        def pen_limits(self) -> dict[str, tuple[float, float]]: ...

    def _setup(self) -> None:  # the controller's own state
        raise NotImplementedError

    def _timeout_arg(self, name: str, value: object) -> float:
        return checks.finite_number(name, value, *TIMEOUT_RANGE_S, unit="s", lo_open=True)

    def _setpoints(self, depth_mm: object, speed_hz: object, duty_pct: object,
                   period_ms: object) -> Setpoints:
        """`_setpoint_number` of each value, in this order, in one call when all four are
        plain finite floats or ints (every setpoint; test_lat13_fast_checks holds it equal)."""
        d, s, du, p = depth_mm, speed_hz, duty_pct, period_ms
        if ((type(d) is float or type(d) is int) and (type(s) is float or type(s) is int)
                and (type(du) is float or type(du) is int)
                and (type(p) is float or type(p) is int)):
            try:
                d, s, du, p = float(d), float(s), float(du), float(p)
            except OverflowError:  # an int past a float: the checks below say so
                pass
            else:
                if math.isfinite(d + s + du + p):  # an inf or a nan makes the sum one
                    return Setpoints(d, s, du, p)
        number = self._setpoint_number
        return Setpoints(number("depth_mm", depth_mm), number("speed_hz", speed_hz),
                         number("duty_pct", duty_pct), number("period_ms", period_ms))

    def _setpoint_number(self, name: str, value: object) -> float:
        """Type and finiteness, within what the pen can do; the zone's envelope narrows it."""
        kind = type(value)  # the common cases first, without the ABC checks
        if kind is float and math.isfinite(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        if kind is int:
            try:
                return float(value)  # type: ignore[arg-type]
            except OverflowError:  # 10**400: the checks below say so
                pass
        if checks.is_finite_real(value):
            return float(value)  # type: ignore[arg-type]  # is_finite_real: a real number
        lo, hi, unit = -math.inf, math.inf, _SETPOINT_UNITS[name]
        # The allowed range named is the active zone's (already narrowed to the pen's limits
        # and a client's floor): the pen's own travel would call depths allowed that the
        # envelope refuses (review 12 REVF-4).
        zone, zone_name = getattr(self, "_zone", None), getattr(self, "zone_name", None)
        if zone is None:
            unit += " (choose a zone first with set_zone(): its envelope bounds every setpoint)"
        else:
            low_field, high_field = _ZONE_FIELDS[name]
            zone_lo, zone_hi = getattr(zone, low_field), getattr(zone, high_field)
            if zone_lo <= zone_hi:
                lo, hi = zone_lo, zone_hi
                unit += f" (the {zone_name} zone's limits)"
            else:  # a client's floor past the ceiling: no value is allowed, say so
                unit += (f", but the {zone_name} zone allows none now (its lowest "
                         f"{zone_lo:g} is above its highest {zone_hi:g})")
        return checks.finite_number(name, value, lo, hi, unit=unit, error=SetpointNumberError)
