"""A pen's depth calibration: how the actuator command maps to the needle's true protrusion.

The displayed setting and the real protrusion differ per unit (cartridge membrane, mechanics),
so the controller never sends "depth in skin" directly: it converts through the pen's own
calibration, `true_mm = offset_mm + gain * actuator_mm`, fitted from gauge readings.
A calibration belongs to one pen serial number and expires (default 30 days).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from smpdevice.errors import SmpError

DEFAULT_VALIDITY_DAYS = 30


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
        created = created_at or datetime.now(UTC)
        return cls(
            pen_serial=pen_serial,
            technician=technician,
            created_at=created,
            expires_at=created + timedelta(days=validity_days),
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

    def check_for(self, pen_serial: str, now: datetime | None = None) -> None:
        """Raise CalibrationError unless this calibration may be used on `pen_serial` now."""
        now = now or datetime.now(UTC)
        if self.pen_serial != pen_serial:
            raise CalibrationError(
                f"calibration {self.calibration_id} belongs to pen {self.pen_serial}, "
                f"but pen {pen_serial} is connected. Calibrate this pen: "
                "`smp calibrate --port PORT`."
            )
        if now >= self.expires_at:
            raise CalibrationError(
                f"the calibration of pen {pen_serial} expired on "
                f"{self.expires_at:%Y-%m-%d %H:%M} UTC. Recalibrate: `smp calibrate --port PORT`."
            )


def require_calibration(calibration: Calibration | None, pen_serial: str) -> Calibration:
    """The calibration if it is valid for `pen_serial` now, else a CalibrationError."""
    if calibration is None:
        raise CalibrationError(
            f"pen {pen_serial} has no calibration. Calibrate it first: "
            "`smp calibrate --port PORT` (or `smp calibrate --auto` on the simulator)."
        )
    calibration.check_for(pen_serial)
    return calibration
