"""The safety envelope: per-zone limits every setpoint must sit inside.

Depth here is *depth in skin*: how far the needle tip really goes past the cartridge tip, after
calibration. Each zone has an **epidermal floor** (the dot must get past the epidermis, with
margin, or it sheds within weeks) and a **dermal ceiling** (deeper than the upper dermis blurs,
spreads and turns blue). Thin skin (hairline, temples) and scar tissue get a narrower window and,
for scars, lower speed.

The defaults below are for simulation and testing, not clinical advice. Every number is
configuration: load overrides with `load_envelope(path)` (YAML or JSON, same shape as
`DEFAULT_ZONES`), and the result is always narrowed to the pen's hard limits from the handshake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smpdevice.errors import SmpError

# Added to a known epidermis thickness to get that client's own floor.
EPIDERMAL_MARGIN_MM = 0.05


class ZoneEnvelope(BaseModel):
    """Limits for one treatment zone. All bounds inclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epidermal_floor_mm: float = Field(gt=0, description="shallowest allowed depth in skin")
    dermal_ceiling_mm: float = Field(gt=0, description="deepest allowed depth in skin")
    speed_min_hz: float = Field(gt=0)
    speed_max_hz: float = Field(gt=0)
    duty_min_pct: float = Field(gt=0, le=100)
    duty_max_pct: float = Field(gt=0, le=100)
    period_min_ms: float = Field(gt=0)
    period_max_ms: float = Field(gt=0)
    max_strokes_per_impression: float = Field(
        gt=0, description="speed x period x duty; more overworks one spot"
    )
    max_pass_s: float = Field(gt=0, description="longest continuous needle run in one pass")

    @model_validator(mode="after")
    def _ordered(self) -> ZoneEnvelope:
        for low, high in (
            ("epidermal_floor_mm", "dermal_ceiling_mm"),
            ("speed_min_hz", "speed_max_hz"),
            ("duty_min_pct", "duty_max_pct"),
            ("period_min_ms", "period_max_ms"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo > hi:
                raise ValueError(f"{low} ({lo}) is above {high} ({hi})")
        return self


def _zone(floor, ceiling, speed, duty, period, strokes, pass_s=600.0) -> ZoneEnvelope:
    return ZoneEnvelope(
        epidermal_floor_mm=floor, dermal_ceiling_mm=ceiling,
        speed_min_hz=speed[0], speed_max_hz=speed[1],
        duty_min_pct=duty[0], duty_max_pct=duty[1],
        period_min_ms=period[0], period_max_ms=period[1],
        max_strokes_per_impression=strokes, max_pass_s=pass_s,
    )


# zone: floor, ceiling (mm in skin), speed (Hz), duty (%), period (ms), max strokes/impression
DEFAULT_ZONES: dict[str, ZoneEnvelope] = {
    "hairline": _zone(0.20, 0.55, (60, 110), (15, 60), (50, 250), 8),
    "temples": _zone(0.20, 0.55, (60, 110), (15, 60), (50, 250), 8),
    "top": _zone(0.25, 0.75, (60, 130), (15, 70), (50, 300), 12),
    "crown": _zone(0.25, 0.75, (60, 130), (15, 70), (50, 300), 12),
    "sides": _zone(0.25, 0.70, (60, 130), (15, 70), (50, 300), 10),
    "nape": _zone(0.25, 0.70, (60, 130), (15, 70), (50, 300), 10),
    "donor_scar": _zone(0.20, 0.50, (50, 90), (15, 50), (80, 300), 6, 300.0),
}


@dataclass(frozen=True)
class Violation:
    """One setpoint outside one limit."""

    parameter: str
    value: float
    limit: float
    rule: str

    def __str__(self) -> str:
        return f"{self.parameter}={self.value:g} {self.rule} {self.limit:g}"


class EnvelopeError(SmpError):
    """A requested setpoint is outside the active zone's envelope; nothing was sent to the pen."""

    def __init__(self, zone: str, violations: list[Violation]):
        self.zone = zone
        self.violations = violations
        listed = "; ".join(str(v) for v in violations)
        super().__init__(f"outside the '{zone}' envelope: {listed}")


def check_setpoints(
    zone: ZoneEnvelope, *, depth_mm: float, speed_hz: float, duty_pct: float, period_ms: float
) -> list[Violation]:
    """Every way these setpoints break `zone` (empty when they are inside it)."""
    out: list[Violation] = []

    def within(name: str, value: float, low: float, high: float, low_rule: str, high_rule: str):
        if value < low:
            out.append(Violation(name, value, low, low_rule))
        elif value > high:
            out.append(Violation(name, value, high, high_rule))

    within("depth_mm", depth_mm, zone.epidermal_floor_mm, zone.dermal_ceiling_mm,
           "is shallower than the epidermal floor", "is deeper than the dermal ceiling")
    within("speed_hz", speed_hz, zone.speed_min_hz, zone.speed_max_hz,
           "is below the minimum", "is above the maximum")
    within("duty_pct", duty_pct, zone.duty_min_pct, zone.duty_max_pct,
           "is below the minimum", "is above the maximum")
    within("period_ms", period_ms, zone.period_min_ms, zone.period_max_ms,
           "is below the minimum", "is above the maximum")
    strokes = strokes_per_impression(speed_hz, duty_pct, period_ms)
    if strokes > zone.max_strokes_per_impression:
        out.append(Violation("strokes_per_impression", round(strokes, 3),
                             zone.max_strokes_per_impression,
                             "(speed x period x duty) is above the maximum"))
    return out


def strokes_per_impression(speed_hz: float, duty_pct: float, period_ms: float) -> float:
    return speed_hz * (period_ms / 1000) * (duty_pct / 100)


def for_skin(zone: ZoneEnvelope, epidermis_mm: float | None) -> ZoneEnvelope:
    """The zone narrowed for a client whose epidermis thickness is known."""
    if epidermis_mm is None:
        return zone
    floor = max(zone.epidermal_floor_mm, epidermis_mm + EPIDERMAL_MARGIN_MM)
    return zone.model_copy(update={"epidermal_floor_mm": round(floor, 4)})


def narrowed(zone: ZoneEnvelope, **bounds: tuple[float, float]) -> ZoneEnvelope:
    """The zone narrowed to outer bounds, e.g. the pen's hard limits:
    `narrowed(z, depth_mm=(lo, hi), speed_hz=(lo, hi), duty_pct=(lo, hi), period_ms=(lo, hi))`.
    Never widens; a zone left empty by the bounds is an error."""
    names = {
        "depth_mm": ("epidermal_floor_mm", "dermal_ceiling_mm"),
        "speed_hz": ("speed_min_hz", "speed_max_hz"),
        "duty_pct": ("duty_min_pct", "duty_max_pct"),
        "period_ms": ("period_min_ms", "period_max_ms"),
    }
    update: dict[str, float] = {}
    for key, (low, high) in bounds.items():
        lo_name, hi_name = names[key]
        new_lo = max(getattr(zone, lo_name), low)
        new_hi = min(getattr(zone, hi_name), high)
        if new_lo > new_hi:
            raise SmpError(
                f"the pen cannot reach this zone's {key} window "
                f"[{getattr(zone, lo_name):g}, {getattr(zone, hi_name):g}]: "
                f"its limits are [{low:g}, {high:g}]"
            )
        update[lo_name], update[hi_name] = new_lo, new_hi
    return zone.model_copy(update=update)


def load_envelope(path: str | Path | None = None) -> dict[str, ZoneEnvelope]:
    """The default zones, with overrides from a YAML or JSON file when `path` is given.

    A file entry may set some fields of an existing zone or define a whole new zone.
    """
    zones = dict(DEFAULT_ZONES)
    if path is None:
        return zones
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SmpError(f"cannot read envelope file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:
        raise SmpError(f"envelope file {path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SmpError(f"envelope file {path}: expected a mapping of zone name to limits")
    for name, fields in data.items():
        base = zones[name].model_dump() if name in zones else {}
        try:
            zones[name] = ZoneEnvelope(**{**base, **(fields or {})})
        except (ValidationError, TypeError) as exc:
            raise SmpError(f"envelope file {path}, zone '{name}': {exc}") from exc
    return zones
