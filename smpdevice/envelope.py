"""The safety envelope: per-zone limits every setpoint must sit inside.

Depth here is *depth in skin*: how far the needle tip really goes past the cartridge tip, after
calibration. Each zone has an **epidermal floor** (the dot must get past the epidermis, with
margin, or it sheds within weeks) and a **dermal ceiling** (deeper than the upper dermis blurs,
spreads and turns blue). Thin skin (hairline, temples) and scar tissue get a narrower window
and, for scars, lower speed. A zone is checked whole where it is used (a NaN limit refuses).

The defaults below are for simulation and testing, not clinical advice. Every number is
configuration: load overrides with `load_envelope(path)` (YAML or JSON, same shape as
`DEFAULT_ZONES`, plus an optional `session:` entry of plan limits), and the result is always
narrowed to the pen's hard limits from the handshake. No file can go past the **absolute caps**
(`CAPS`, docs/safety.md): they are the bounds of the model itself, so a file, an API caller or a
typo can narrow a zone but never open it wider than these.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.issues import Issue, from_pydantic, join, show, unit_of
from smpdevice.loader import load_file

# Added to a known epidermis thickness to get that client's own floor.
EPIDERMAL_MARGIN_MM = 0.05

# The absolute caps (docs/safety.md, "Absolute caps"). Conservative on purpose; the defaults
# below sit inside them, and `test_default_zones_fit_inside_the_caps` keeps it that way.
CAPS: dict[str, tuple[float, float]] = {
    "depth_mm": (0.05, 1.0),  # floor never above the skin, ceiling never below the upper dermis
    "speed_hz": (20.0, 150.0),  # "typically 50-150 Hz"
    "duty_pct": (5.0, 100.0),
    "period_ms": (20.0, 1000.0),
    "max_strokes_per_impression": (0.0, 20.0),
    "max_pass_s": (0.0, 600.0),  # 10 min of continuous needle in one pass
    "max_passes": (1, 600),  # a 600-pass plan is ~3,600 values: it fits the loader's cap
    "max_needle_s": (0.0, 18_000.0),  # 5 h of needle time in one session
}


def _capped(key: str, description: str, *, low_open: bool = False) -> Any:
    low, high = CAPS[key]
    return (Field(gt=low, le=high, description=description) if low_open
            else Field(ge=low, le=high, description=description))


class _StrictModel(BaseModel):
    # Strict: a bool or the string '0.9' is not a number. NaN and infinity compare False against
    # every limit (so they would switch a limit off): never allowed.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:  # an API caller gets the same typed error as a file
            raise InvalidEnvelope(from_pydantic(exc, bound="the absolute cap")) from None


class ZoneEnvelope(_StrictModel):
    """Limits for one treatment zone. All bounds inclusive; every one inside `CAPS`."""

    epidermal_floor_mm: float = _capped("depth_mm", "shallowest allowed depth in skin")
    dermal_ceiling_mm: float = _capped("depth_mm", "deepest allowed depth in skin")
    speed_min_hz: float = _capped("speed_hz", "slowest allowed stroke rate")
    speed_max_hz: float = _capped("speed_hz", "fastest allowed stroke rate")
    duty_min_pct: float = _capped("duty_pct", "lowest needle-on share of a period")
    duty_max_pct: float = _capped("duty_pct", "highest needle-on share of a period")
    period_min_ms: float = _capped("period_ms", "shortest pulse period (one impression)")
    period_max_ms: float = _capped("period_ms", "longest pulse period")
    max_strokes_per_impression: float = _capped(
        "max_strokes_per_impression", "speed x period x duty; more overworks one spot",
        low_open=True)
    max_pass_s: float = _capped("max_pass_s", "longest continuous needle run in one pass",
                                low_open=True)

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
                raise ValueError(f"{low} ({lo:g}) is above {high} ({hi:g})")
        return self


class SessionLimits(_StrictModel):
    """Limits of one session's plan (all its passes together)."""

    max_passes: int = Field(default=400, ge=CAPS["max_passes"][0], le=CAPS["max_passes"][1],
                            description="most passes one profile's plan may hold")
    max_needle_s: float = Field(default=10_800.0, gt=0, le=CAPS["max_needle_s"][1],
                                description="most needle time one plan may ask for")


class Envelope(dict[str, ZoneEnvelope]):
    """The zones by name (a plain mapping, as before) plus the session's plan limits, and the
    file it was read from (`source`; None: the built-in zones), which refusals name."""

    def __init__(self, zones: Mapping[str, ZoneEnvelope] | None = None,
                 session: SessionLimits | None = None, source: str | None = None):
        super().__init__(zones or {})
        self.session, self.source = session or SessionLimits(), source


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

    def __init__(self, zone: str, violations: list[Violation], message: str | None = None):
        self.zone = zone
        self.violations = violations
        listed = "; ".join(str(v) for v in violations)
        super().__init__(message or f"outside the '{zone}' envelope: {listed}")

    @classmethod
    def unknown_zone(cls, zone: str, known: list[str]) -> EnvelopeError:
        """No envelope for `zone`: the message names the value given (a Violation holds a
        number only) and the zones there are."""
        return cls(zone, [Violation("zone", 0, 0, "is unknown")],
                   f"zone={show(zone)} is unknown; known zones: {', '.join(known)}. "
                   "Choose one of them (names are case-sensitive).")


class NumberError(SmpError, ValueError):
    """A number given through the API is not a finite real number in range (NaN, infinity, a
    bool, text, an integer too large for a float). Nothing was sent or stored."""


def finite_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                  where: str = "", *, enforce_range: bool = True) -> float:
    """`value` as a float when it is a real, finite number (not a bool) within [low, high];
    NumberError naming the parameter, the value and the allowed range otherwise. With
    `enforce_range=False` the range only goes into the message (the caller reports it)."""
    span = f"{low:g}..{high:g}{unit_of(name)}" if low is not None and high is not None else ""
    allowed = f"; allowed: {span}{where}" if span else "; it must be a finite number"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise NumberError(f"{name} = {show(value)} is not a number{allowed}")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        raise NumberError(f"{name} = {show(value)} is too large{allowed}") from None
    if not math.isfinite(number):
        raise NumberError(f"{name} = {number} is not a finite number{allowed}")
    if enforce_range and ((low is not None and number < low)
                          or (high is not None and number > high)):
        raise NumberError(f"{name} = {number:g} is out of range{allowed}")
    return number


def check_setpoints(
    zone: ZoneEnvelope, *, depth_mm: float, speed_hz: float, duty_pct: float, period_ms: float
) -> list[Violation]:
    """Every way these setpoints break `zone` (empty when they are inside it). A value that is
    not a finite number raises NumberError: NaN would otherwise pass every comparison."""
    def number(name: str, value: Any, low: float, high: float) -> float:
        return finite_number(name, value, low, high, " (this zone's limits)", enforce_range=False)

    _require_zone(zone)  # a model_copy may hold a NaN limit: it would pass every setpoint

    depth_mm = number("depth_mm", depth_mm, zone.epidermal_floor_mm, zone.dermal_ceiling_mm)
    speed_hz = number("speed_hz", speed_hz, zone.speed_min_hz, zone.speed_max_hz)
    duty_pct = number("duty_pct", duty_pct, zone.duty_min_pct, zone.duty_max_pct)
    period_ms = number("period_ms", period_ms, zone.period_min_ms, zone.period_max_ms)
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


def _require_zone(zone: object) -> ZoneEnvelope:  # a model_copy may hold a NaN limit
    checks.instance("zone", zone, ZoneEnvelope, "a ZoneEnvelope (e.g. load_envelope()['crown'])")
    for name, value in ((n, getattr(zone, n)) for n in ZoneEnvelope.model_fields):
        if type(value) is not float or not math.isfinite(value):  # fast: each set_setpoints
            finite_number(f"zone.{name}", value)  # NumberError unless a finite int
    return zone  # type: ignore[return-value]  # checked just above


def strokes_per_impression(speed_hz: float, duty_pct: float, period_ms: float) -> float:
    return speed_hz * (period_ms / 1000) * (duty_pct / 100)


def for_skin(zone: ZoneEnvelope, epidermis_mm: float | None) -> ZoneEnvelope:
    """The zone narrowed for a client whose epidermis thickness is known."""
    if epidermis_mm is None:
        return zone
    epidermis_mm = finite_number("epidermis_mm", epidermis_mm, 0.0, 5.0)
    # Rounded up to 0.1 um, never down (0.35 + 0.05 is 0.39999999999999997 in floats)
    own = math.ceil((epidermis_mm + EPIDERMAL_MARGIN_MM) * 10_000 - 1e-6) / 10_000
    return zone.model_copy(update={"epidermal_floor_mm": max(zone.epidermal_floor_mm, own)})


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
        low = finite_number(f"{key} lower bound", low)  # a NaN bound would narrow nothing
        high = finite_number(f"{key} upper bound", high)
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


# --- envelope files -----------------------------------------------------------------------------


class InvalidEnvelope(SmpError):
    """An envelope (file or API) breaks a rule: `issues` lists every problem, one line each.
    Nothing of it was used."""

    exit_code = 1

    def __init__(self, issues: list[Issue], source: str | None = None):
        self.issues = issues
        self.source = source
        n = len(issues)
        where = f"envelope {source}" if source else "envelope"
        again = f"`smp envelope check {source}`" if source else "it"
        listed = "\n  ".join(str(i) for i in issues)
        super().__init__(f"{where} has {n} error{'s' if n != 1 else ''} (fix them and check "
                         f"{again} again):\n  {listed}")


# A zone's name: lowercase words joined by '_' (bounded, so no name is a bomb of its own).
_ZONE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def load_envelope(path: str | Path | None = None) -> Envelope:
    """The default zones, with overrides from a YAML or JSON file when `path` is given.

    A file entry may set some fields of an existing zone or define a whole new zone; the entry
    `session:` sets the plan limits (`max_passes`, `max_needle_s`). The file is read by the strict
    loader (LoadError) and checked whole: InvalidEnvelope lists every issue at once.
    """
    if path is None:
        return Envelope(DEFAULT_ZONES)
    source = str(path)
    data = load_file(path)
    return parse_envelope(data, source)


@dataclass(frozen=True)
class StationEnvelope:
    """The envelope in force at this station, and where it came from."""

    zones: Envelope
    file: str | None  # None: the built-in zones
    source: str  # "option", "environment SMP_ENVELOPE", "config file PATH" or "default"

    def describe(self) -> str:
        if self.file is None:
            return "the built-in envelope (no station envelope set)"
        return f"the envelope {self.file} (from the {self.source})"


def station_envelope(option: str | None = None) -> StationEnvelope:
    """The envelope every command uses: `option` (a command's --envelope), else SMP_ENVELOPE,
    else `envelope` in the station config, else the built-in zones (smpdevice.config), so a
    check says what a run will say."""
    from smpdevice.config import setting

    chosen = setting("envelope", option)
    return StationEnvelope(load_envelope(chosen.value), chosen.value, chosen.source)


def parse_envelope(data: Mapping[str, Any], source: str | None = None) -> Envelope:
    """Overrides already parsed (a mapping) applied to the defaults; InvalidEnvelope otherwise."""
    zones = dict(DEFAULT_ZONES)
    session = SessionLimits()
    issues: list[Issue] = []
    for name, fields in data.items():
        if name == "session":
            if not isinstance(fields, dict):
                issues.append(Issue("session", fields, "is not a mapping of plan limits "
                                    "(max_passes, max_needle_s)"))
                continue
            session = _validated(SessionLimits, fields, "session", issues) or session
            continue
        if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name):
            issues.append(Issue(str(name)[:40], name, "is not a zone name: use 1-40 lowercase "
                                "letters, digits or '_', starting with a letter"))
            continue
        if not isinstance(fields, dict):
            issues.append(Issue(name, fields, "is not a mapping of limits (e.g. "
                                "{dermal_ceiling_mm: 0.5})"))
            continue
        base = zones[name].model_dump() if name in zones else {}
        zone = _validated(ZoneEnvelope, {**base, **fields}, name, issues)
        if zone is not None:
            zones[name] = zone
    if issues:
        raise InvalidEnvelope(issues, source)
    return Envelope(zones, session, source)


def _validated(model: Any, fields: dict[str, Any], prefix: str, issues: list[Issue]) -> Any:
    """`model(**fields)`, or None with its issues (prefixed with `prefix`) added to `issues`."""
    try:
        return model(**fields)  # the models' __init__ turns pydantic's error into ours
    except InvalidEnvelope as exc:
        issues.extend(Issue(join(prefix, i.path), i.value, i.rule, i.missing) for i in exc.issues)
    return None


def envelope_record(zones: Mapping[str, ZoneEnvelope]) -> dict[str, Any]:
    """The envelope in force, for a session's header: its content as plain data and the SHA-256
    of that content's canonical JSON (sorted keys, no whitespace), so a record shows exactly
    which limits applied and a reader can recompute the hash from the record alone:
    `{"sha256": ..., "zones": {name: {field: value}}, "session": {max_passes, max_needle_s}}`;
    the hash covers `{"session": ..., "zones": ...}`."""
    checks.instance("zones", zones, Mapping, "a mapping of zone name to ZoneEnvelope")
    session = getattr(zones, "session", None) or SessionLimits()
    content = {"session": session.model_dump(),
               "zones": {name: _require_zone(zone).model_dump()  # each one finite, whole
                         for name, zone in sorted(zones.items())}}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {"sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), **content}
