"""A pen's depth calibration: how the actuator command maps to the needle's true protrusion.

The displayed setting and the real protrusion differ per unit (cartridge membrane, mechanics),
so the controller never sends "depth in skin" directly: it converts through the pen's own
calibration, `true_mm = offset_mm + gain * actuator_mm`, fitted from gauge readings.
A calibration belongs to one pen serial number and expires (default 30 days).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.outcomes import calibrate_command

DEFAULT_VALIDITY_DAYS = 30
# What a calibration may hold. Outside these a pen is broken or a number was mistyped; either
# way, no needle depth may be computed from it.
GAIN_RANGE = (0.5, 2.0)  # true mm per actuator mm
OFFSET_RANGE_MM = (-3.0, 3.0)  # true protrusion at actuator 0 mm
POINT_RANGE_MM = (-5.0, 10.0)  # actuator and gauge readings
RESIDUAL_MAX_MM = 5.0
SPEED_ERROR_MAX_PCT = 100.0
RATE_RANGE_HZ = (0.0, 10_000.0)  # set and measured puncture rates
VALIDITY_MAX_DAYS = 366
# A calibration dated later than this past "now" was made (or is judged) on a clock that was
# wrong: its age and expiry cannot be trusted (review9b R08). Covers two PCs' clock drift.
FUTURE_SLACK = timedelta(hours=1)
MAX_POINTS = 64


class CalibrationError(SmpError):
    """No usable calibration for this pen; the message says which and what to do."""


class Calibration(BaseModel):
    """A fitted depth calibration (linear), with its provenance."""

    model_config = ConfigDict(frozen=True)

    calibration_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    pen_serial: str
    technician: str
    created_at: datetime
    expires_at: datetime
    offset_mm: float = Field(description="true protrusion at actuator 0 mm (may be negative)")
    gain: float = Field(gt=0, description="true mm per actuator mm")
    points: list[tuple[float, float]] = Field(
        default_factory=list, description="(actuator_mm, gauge_mm) pairs the fit came from"
    )
    residuals_mm: list[float] = Field(default_factory=list)
    speed_error_pct: float | None = Field(
        default=None, description="worst speed error found by the speed check, if run"
    )
    depth_checks: list[tuple[float, float]] = Field(
        default_factory=list, description="(commanded_mm, gauge_mm) check readings taken "
        "through this calibration after the fit, not the fit points (depth accuracy)")
    rate_checks: list[tuple[float, float]] = Field(
        default_factory=list, description="(set_hz, measured punctures per second) of the "
        "speed check (puncture rate accuracy)")
    simulated: bool = Field(
        default=False, description="made on a simulated pen (never use it on a real one)"
    )

    @model_validator(mode="before")
    @classmethod
    def _strict(cls, data: Any) -> Any:
        """Type, finiteness and range of every field, as one CalibrationError (pydantic alone
        would take inf, nan, True and "0.5")."""
        if not isinstance(data, dict):
            raise CalibrationError(f"a calibration is a mapping of fields, not "
                                   f"{type(data).__name__}")
        err = CalibrationError
        checks.text("pen_serial", data.get("pen_serial"), max_len=32, error=err)
        checks.technician(data.get("technician"), error=err)
        if "calibration_id" in data:
            checks.text("calibration_id", data["calibration_id"], max_len=64, error=err)
        checks.finite_number("gain", data.get("gain"), *GAIN_RANGE, unit="mm/mm", error=err)
        checks.finite_number("offset_mm", data.get("offset_mm"), *OFFSET_RANGE_MM, unit="mm",
                             error=err)
        for name in ("points", "residuals_mm", "depth_checks", "rate_checks"):
            seq = data.get(name, [])
            if not isinstance(seq, list | tuple) or len(seq) > MAX_POINTS:
                raise CalibrationError(f"{name} is refused: it must be a list of at most "
                                       f"{MAX_POINTS} items (got a {type(seq).__name__})")
        for i, point in enumerate(data.get("points", [])):
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise CalibrationError(f"points[{i}]={point!r} is refused: a point is a pair "
                                       "(actuator_mm, gauge_mm)")
            for part, v in zip(("actuator_mm", "gauge_mm"), point, strict=True):
                checks.finite_number(f"points[{i}].{part}", v, *POINT_RANGE_MM, unit="mm",
                                     error=err)
        for name, parts, bounds, unit in (
                ("depth_checks", ("commanded_mm", "gauge_mm"), POINT_RANGE_MM, "mm"),
                ("rate_checks", ("set_hz", "measured_hz"), RATE_RANGE_HZ, "Hz")):
            for i, pair in enumerate(data.get(name, [])):
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise CalibrationError(f"{name}[{i}]={pair!r} is refused: it is a pair "
                                           f"({', '.join(parts)})")
                for part, v in zip(parts, pair, strict=True):
                    checks.finite_number(f"{name}[{i}].{part}", v, *bounds, unit=unit, error=err)
        for i, r in enumerate(data.get("residuals_mm", [])):
            checks.finite_number(f"residuals_mm[{i}]", r, -RESIDUAL_MAX_MM, RESIDUAL_MAX_MM,
                                 unit="mm", error=err)
        if data.get("speed_error_pct") is not None:
            checks.finite_number("speed_error_pct", data["speed_error_pct"],
                                 -SPEED_ERROR_MAX_PCT, SPEED_ERROR_MAX_PCT, unit="%", error=err)
        if not isinstance(data.get("simulated", False), bool):
            raise CalibrationError(f"simulated={data['simulated']!r} is refused: it is "
                                   "true or false")
        return data

    @model_validator(mode="after")
    def _dates(self) -> Calibration:
        for name in ("created_at", "expires_at"):
            aware_utc(name, getattr(self, name))
        if self.expires_at <= self.created_at:
            raise CalibrationError(f"expires_at={self.expires_at} is refused: it must be after "
                                   f"created_at={self.created_at}")
        # The cap holds for every calibration, also one read back from a store or a file: a
        # record claiming years of validity is damaged, never a licence to arm the pen.
        if self.expires_at - self.created_at > timedelta(days=VALIDITY_MAX_DAYS):
            raise CalibrationError(f"expires_at={self.expires_at} is refused: a calibration is "
                                   f"valid at most {VALIDITY_MAX_DAYS} days after created_at="
                                   f"{self.created_at}")
        return self

    @classmethod
    def linear(
        cls,
        *,
        pen_serial: str,
        technician: str,
        offset_mm: float,
        gain: float,
        created_at: datetime | None = None,
        validity_days: float = DEFAULT_VALIDITY_DAYS,
        **extra,
    ) -> Calibration:
        created = datetime.now(UTC) if created_at is None else created_at  # never 0 -> now
        days = checks.finite_number("validity_days", validity_days, 0, VALIDITY_MAX_DAYS,
                                    unit="days", lo_open=True, error=CalibrationError)
        aware_utc("created_at", created)
        _known_extra(extra)
        try:  # the checked float (a Fraction too)
            expires = created + timedelta(days=days)
            aware_utc("expires_at", expires)
        except (OverflowError, CalibrationError):
            raise CalibrationError(
                f"created_at={created!r} is refused: {float(days):g} days of validity from it "
                "end past the last time a datetime holds (9999-12-31 UTC); give the time the "
                "calibration was made") from None
        return cls(
            pen_serial=pen_serial,
            technician=technician,
            created_at=created,
            expires_at=expires,
            offset_mm=offset_mm,
            gain=gain,
            **extra,
        )

    def to_actuator_mm(self, depth_mm: float) -> float:
        """The actuator command that puts the needle tip `depth_mm` past the cartridge tip."""
        return (depth_mm - self.offset_mm) / self.gain

    def to_depth_mm(self, actuator_mm: float) -> float:
        """The true protrusion for an actuator position."""
        return self.offset_mm + self.gain * actuator_mm

    @property
    def zero_actuator_mm(self) -> float:
        """Actuator position where the needle tip is flush with the cartridge tip."""
        return self.to_actuator_mm(0.0)

    def check_for(self, pen_serial: str, now: datetime | None = None, *,
                  port: str | None = None, again: str | None = None) -> None:
        """Raise CalibrationError unless this calibration may be used on `pen_serial` now.
        `port`, when known, makes the hint a command that can be pasted as it is; `again`, the
        whole command to recalibrate when the caller knows it (a command's own options)."""
        now = today_utc() if now is None else aware_utc("now", now, error=checks.InvalidArgument)
        # the hint is built only for a refusal: quoting the command costs ~20 calls, and this
        # runs for every setpoint
        if self.pen_serial != pen_serial:
            raise CalibrationError(
                f"calibration {self.calibration_id} belongs to pen {self.pen_serial}, "
                f"but pen {pen_serial} is connected. Calibrate this pen: "
                f"{again or _calibrate_hint(port)}"
            )
        if self.created_at - now > FUTURE_SLACK:  # a difference never overflows (a sum may)
            raise CalibrationError(
                f"calibration {self.calibration_id} of pen {pen_serial} is dated "
                f"{self.created_at:%Y-%m-%d %H:%M} UTC, after this computer's clock "
                f"({now:%Y-%m-%d %H:%M} UTC): one of the two clocks was wrong, so its age and "
                f"expiry cannot be trusted. Check the clock, then recalibrate: "
                f"{again or _calibrate_hint(port)}"
            )
        if now >= self.expires_at:
            raise CalibrationError(
                f"the calibration of pen {pen_serial} expired on "
                f"{self.expires_at:%Y-%m-%d %H:%M} UTC. Recalibrate: "
                f"{again or _calibrate_hint(port)}"
            )


def aware_utc(name: str, value: object, *,
              error: type[Exception] = CalibrationError) -> datetime:
    """`value` if it is a datetime with a time zone that has a UTC time (9999-12-31T20:00-14:00
    has none: every comparison or conversion of it overflows), else `error` naming `name`."""
    if not isinstance(value, datetime):
        raise error(f"{name}={value!r} is refused: it must be a datetime with a time zone "
                    "(UTC)")
    if value.utcoffset() is None:
        raise error(f"{name}={value} is refused: it needs a time zone (use UTC)")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise error(f"{name}={value} is refused: it is out of range (no UTC time between "
                    "0001-01-01 and 9999-12-31 matches it)") from None
    return value


def _known_extra(extra: dict[str, Any]) -> None:
    """The keyword arguments `linear` passes on are fields it does not set itself: a
    misspelled one (pydantic would drop it unseen) or `expires_at` is refused, named."""
    fields = set(Calibration.model_fields) - {"created_at", "expires_at", "pen_serial",
                                              "technician", "offset_mm", "gain"}
    for name in extra:
        if name == "expires_at":
            raise CalibrationError("expires_at is refused by Calibration.linear: it is "
                                   "created_at plus validity_days; give validity_days")
        if name not in fields:
            raise CalibrationError(f"{name} is refused by Calibration.linear: it is no "
                                   f"field of a calibration (fields: {', '.join(sorted(fields))})")


def today_utc() -> datetime:
    """The wall clock a calibration's validity is judged by (the controller's `validity_now`
    too, outside a replay): one place, so a test can move it on a month."""
    return datetime.now(UTC)


def _calibrate_hint(port: str | None) -> str:
    return calibrate_command(port) if port else "smp calibrate --port PORT"


def require_calibration(calibration: Calibration | None, pen_serial: str, *,
                        simulated_pen: bool | None = None,
                        port: str | None = None, now: datetime | None = None) -> Calibration:
    """The calibration if it is valid for `pen_serial` now, else a CalibrationError. With
    `simulated_pen` given, a calibration made on a simulator is refused for a real pen: the
    simulator's hidden offset and gain must never set a real needle's depth."""
    checks.instance("calibration", calibration, (Calibration, type(None)),
                    "a Calibration or None")
    if calibration is None:
        raise CalibrationError(
            f"pen {pen_serial} has no calibration. Calibrate it first: {_calibrate_hint(port)}"
        )
    if simulated_pen is False and calibration.simulated:
        raise CalibrationError(
            f"calibration {calibration.calibration_id} was made on a simulated pen, but pen "
            f"{pen_serial} is a real pen: a simulator's calibration never drives a real "
            f"needle. Calibrate this pen: {_calibrate_hint(port)}"
        )
    calibration.check_for(pen_serial, now, port=port)
    return calibration


def checked_whole(calibration: object) -> None:
    """Before a calibration is installed: a Calibration or None, and as `model_copy(update=...)`
    skips the constructor's checks, a copy is checked whole again, as a read of the store checks
    it (review 15: a gain of 10 installed drove the needle a tenth as deep)."""
    checks.instance("calibration", calibration, (Calibration, type(None)),
                    "a Calibration or None")
    if calibration is not None:
        from smpdevice.calibration.checked import revalidated  # it imports this module

        revalidated(calibration)
