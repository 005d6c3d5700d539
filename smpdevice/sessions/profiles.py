"""Treatment profiles: what session software asks the pen to do, checked before the pen is touched.

A profile is YAML or JSON (`schema_version: 1`)::

    schema_version: 1
    session_kind: base_density        # base_density | shading_definition | adjustment
                                      # | touch_up | scar_camouflage
    client_ref: C-0042                # pseudonymous: letters, digits, - and _, with a digit
    skin: {epidermis_mm: 0.09}        # optional; raises each zone's epidermal floor
    zones:
      hairline: {needle: 1RL 0.25mm, depth_mm: 0.35, speed_hz: 90, duty_pct: 40, period_ms: 100}
    plan:                             # optional, for automated playback
      - {zone: hairline, duration_s: 3}
      - {zone: hairline, impressions: 20}

Validation is two layers reported together: the shape (pydantic: types, ranges, the needle, the
reference) and the safety envelope of each zone (`smpdevice.envelope`, narrowed for the client's
epidermis and, when known, the pen's hard limits), plus the plan's cross-checks. Every problem
becomes one `ProfileIssue` (field path, value, rule) and all of them are raised at once in one
`ProfileError`. Use `load_profile` / `parse_profile`: constructing `TreatmentProfile` directly
checks the shape only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from smpdevice import checks
from smpdevice.envelope import CAPS, ZoneEnvelope
from smpdevice.errors import SmpError
from smpdevice.issues import Issue, from_pydantic
from smpdevice.loader import LoadError, load_file
from smpdevice.sessions.profile_checks import (
    check_limit_args,
    envelope_issues,
    session_limits,
    too_many_passes,
)

SCHEMA_VERSION = 1
NEEDLE_COUNTS = (1, 3, 5)
NEEDLE_GROUPINGS = ("RL", "RS")  # round liner, round shader
NEEDLE_DIAMETER_MM = (0.18, 0.35)

# Outer bounds for the pen's hard limits, as `envelope.narrowed` takes them.
PenLimits = Mapping[str, tuple[float, float]]

# Longest needle description read at all: '1RL 0.25mm' is 10; spaces and zeros leave room.
MAX_NEEDLE_CHARS = 32
MAX_NAME_CHARS = 40  # zone names
# One token each, tried at one position each: no two quantifiers compete for the same
# characters, so matching is linear (the old single pattern backtracked quadratically).
_COUNT = re.compile(r"[0-9]+")
_GROUPING = re.compile(r"[A-Za-z]+")
_DIAMETER = re.compile(r"[0-9]*\.?[0-9]+")
# A pseudonym, not a name: no spaces, no @, at least one digit (e.g. C-0042, smp_2024_117);
# in the JSON Schema too (an ECMA-262 regex: the lookahead asks for the digit).
_CLIENT_REF_RE = re.compile(_CLIENT_REF_PATTERN := r"^(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{3,64}$")


class SessionKind(StrEnum):
    """The kind of session; 1-3 are the standard protocol, 10-30 days apart."""

    base_density = "base_density"  # session 1
    shading_definition = "shading_definition"  # session 2
    adjustment = "adjustment"  # session 3: hairline density settled
    touch_up = "touch_up"  # every few years
    scar_camouflage = "scar_camouflage"  # FUT strip / FUE donor scars

    @property
    def number(self) -> int | None:
        """The session's number in the 3-session protocol, None outside it."""
        return {"base_density": 1, "shading_definition": 2, "adjustment": 3}.get(self.value)


@dataclass(frozen=True)
class Needle:
    """A cartridge needle, e.g. `1RL 0.25mm`: `count` needles in a round liner/shader group."""

    count: int
    grouping: str
    diameter_mm: float

    def __str__(self) -> str:
        return f"{self.count}{self.grouping} {self.diameter_mm:g}mm"


def _tokens(text: str) -> tuple[str, str, str] | None:
    """count, grouping, diameter of `<count><grouping><diameter>mm` (spaces allowed between)."""
    pos, parts = 0, []
    for pattern in (_COUNT, _GROUPING, _DIAMETER):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        m = pattern.match(text, pos)
        if not m:
            return None
        parts.append(m.group())
        pos = m.end()
    rest = text[pos:].strip()
    return (parts[0], parts[1], parts[2]) if rest == "mm" else None


def parse_needle(text: str) -> Needle:
    """Parse `"1RL 0.25mm"`; ValueError naming the rule when it is not a valid SMP needle.
    Linear in the length of `text`, and refuses anything longer than MAX_NEEDLE_CHARS."""
    if not isinstance(text, str) or len(text) > MAX_NEEDLE_CHARS:
        raise ValueError(f"is not a needle like '1RL 0.25mm' (at most {MAX_NEEDLE_CHARS} "
                         "characters)")
    parts = _tokens(text)
    if parts is None or len(parts[0]) > 2 or len(parts[2]) > 8:
        raise ValueError("is not a needle like '1RL 0.25mm' (count, RL or RS, diameter in mm)")
    count, grouping, diameter_mm = int(parts[0]), parts[1].upper(), float(parts[2])
    if count not in NEEDLE_COUNTS:
        counts = ", ".join(map(str, NEEDLE_COUNTS))
        raise ValueError(f"needle count {count} is not one of {counts}")
    if grouping not in NEEDLE_GROUPINGS:
        raise ValueError(
            f"needle grouping '{grouping}' is not RL (round liner) or RS (round shader)")
    lo, hi = NEEDLE_DIAMETER_MM
    if not lo <= diameter_mm <= hi:
        raise ValueError(f"needle diameter {diameter_mm:g} mm is outside {lo:g}..{hi:g} mm")
    return Needle(count, grouping, diameter_mm)


class _Strict(BaseModel):
    # NaN and infinity compare False against every limit, so they must never get in.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Zone names are bounded, so no name is a bomb of its own in a message.
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
# Strict: a YAML string or boolean where a number belongs is a mistake, not a number.
PositiveMm = Annotated[StrictFloat, Field(gt=0, le=5)]


class Skin(_Strict):
    """What is known of the client's skin on the treatment area."""

    epidermis_mm: PositiveMm | None = Field(
        default=None, description="measured epidermis thickness; the floor becomes this + margin"
    )


class ZoneSettings(_Strict):
    """Needle and setpoints for one zone. Depth is depth in skin (after calibration)."""

    needle: str = Field(description="e.g. '1RL 0.25mm': count 1|3|5, RL|RS, 0.18..0.35 mm",
                        max_length=MAX_NEEDLE_CHARS,
                        examples=["1RL 0.25mm", "3RL 0.30mm"])
    depth_mm: PositiveMm
    speed_hz: StrictFloat = Field(gt=0, description="strokes per second")
    duty_pct: StrictFloat = Field(gt=0, le=100, description="needle-on share of each pulse period")
    period_ms: StrictFloat = Field(gt=0, description="one impression (dot) per period")

    @field_validator("needle")
    @classmethod
    def _needle(cls, value: str) -> str:
        return str(parse_needle(value))  # canonical spelling, so equal profiles hash equal

    @property
    def needle_spec(self) -> Needle:
        return parse_needle(self.needle)


class PlannedPass(_Strict):
    """One pass of the plan: a zone, and either a duration or a number of impressions."""

    zone: ZoneName
    # Far above any zone's max_pass_s; the envelope check gives the real limit.
    duration_s: StrictFloat | None = Field(default=None, gt=0, le=CAPS["max_needle_s"][1])
    impressions: StrictInt | None = Field(default=None, gt=0, le=10_000_000)

    @model_validator(mode="after")
    def _exactly_one(self) -> PlannedPass:
        if (self.duration_s is None) == (self.impressions is None):
            raise ValueError("give exactly one of duration_s or impressions")
        return self


class TreatmentProfile(_Strict):
    """A treatment profile, schema version 1."""

    model_config = ConfigDict(title="SMP treatment profile")

    schema_version: Literal[1] = Field(description="always 1 for this schema")
    session_kind: SessionKind
    client_ref: str = Field(
        max_length=64, json_schema_extra={"minLength": 3, "pattern": _CLIENT_REF_PATTERN},
        description="pseudonymous client reference (never a name or e-mail): 3-64 letters, "
        "digits, '-' or '_', with at least one digit", examples=["C-0042"])
    skin: Skin = Field(default_factory=Skin)
    zones: dict[ZoneName, ZoneSettings] = Field(min_length=1, max_length=64)
    plan: list[PlannedPass] = Field(default_factory=list, max_length=int(CAPS["max_passes"][1]),
                                    description="passes to play; at most the envelope's "
                                    "session.max_passes, in at most its session.max_needle_s")

    @field_validator("client_ref")
    @classmethod
    def _pseudonym(cls, value: str) -> str:
        if not _CLIENT_REF_RE.fullmatch(value):
            raise ValueError(
                "is not a pseudonymous reference: use 3-64 letters, digits, '-' or '_' with at "
                "least one digit (e.g. C-0042), never a name or e-mail address"
            )
        return value


# One problem: where (`path`, e.g. `zones.hairline.depth_mm`), what, and why (shared with the
# envelope, so both print `field.path = value: rule`).
ProfileIssue = Issue


class ProfileError(SmpError):
    """A profile failed validation; `issues` lists every problem. Nothing reached the pen."""

    exit_code = 1

    def __init__(self, issues: list[ProfileIssue], source: str | None = None):
        self.issues = issues
        self.source = source
        where = f"profile {source}" if source else "profile"
        listed = "\n  ".join(str(i) for i in issues)
        n = len(issues)
        super().__init__(
            f"{where} has {n} error{'s' if n != 1 else ''} (fix them and run "
            f"`smp profile check` again):\n  {listed}"
        )


# --- loading -------------------------------------------------------------------------------


def load_profile(
    path: str | Path,
    envelope: Mapping[str, ZoneEnvelope] | None = None,
    *,
    pen_limits: PenLimits | None = None,
) -> TreatmentProfile:
    """Read a YAML (.yaml/.yml) or JSON profile and validate it completely.

    `envelope` defaults to `load_envelope()`; `pen_limits` (from the handshake) narrows each
    zone further. Raises `ProfileError` with every issue, including file-level ones.
    """
    checks.instance("path", path, (str, Path), "a profile file's path (str or Path)")
    source = str(path)
    try:
        data = load_file(path)  # the strict loader: caps, duplicate keys, YAML 1.2, finite
    except LoadError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        raise ProfileError([ProfileIssue("", source, f"{where}{exc.problem}; {exc.hint}",
                                         missing=True)], source) from None
    return parse_profile(data, envelope, pen_limits=pen_limits, source=source)


def parse_profile(
    data: Any,
    envelope: Mapping[str, ZoneEnvelope] | None = None,
    *,
    pen_limits: PenLimits | None = None,
    source: str | None = None,
) -> TreatmentProfile:
    """Validate already-parsed data (a mapping); raise `ProfileError` listing every issue."""
    check_limit_args(envelope, pen_limits)  # InvalidArgument: a path where the zones go
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ProfileError([ProfileIssue(
            "", data, f"the profile is {kind}; its top level must be a mapping "
            "(schema_version, session_kind, client_ref, zones, ...)", missing=True,
        )], source)
    issues: list[ProfileIssue] = []
    version = data.get("schema_version")
    if "schema_version" in data and (type(version) is not int or version != SCHEMA_VERSION):
        # Nothing else can be trusted to mean the same thing in another version.
        raise ProfileError([ProfileIssue(
            "schema_version", version,
            f"this smpdevice reads schema_version {SCHEMA_VERSION}; convert the profile or "
            "upgrade smpdevice",
        )], source)
    max_passes = session_limits(envelope).max_passes
    raw_plan = data.get("plan")
    if isinstance(raw_plan, list) and len(raw_plan) > max_passes:
        issues.append(too_many_passes(len(raw_plan), max_passes))
        data = {**data, "plan": []}  # too many entries to check one by one: refused as a whole
    profile: TreatmentProfile | None = None
    try:
        profile = TreatmentProfile.model_validate(data)
    except ValidationError as exc:
        issues.extend(_from_pydantic(exc))
    # Envelope checks run on every part that is valid on its own, so all errors come at once.
    if profile is not None:
        zones, plan, epidermis = profile.zones, list(enumerate(profile.plan)), \
            profile.skin.epidermis_mm
    else:
        zones, plan, epidermis = _valid_parts(data)
    issues.extend(envelope_issues(zones, plan, epidermis, envelope, pen_limits))
    if issues:
        raise ProfileError(issues, source)
    assert profile is not None
    return profile


def check_profile(
    profile: TreatmentProfile,
    envelope: Mapping[str, ZoneEnvelope] | None = None,
    *,
    pen_limits: PenLimits | None = None,
) -> list[ProfileIssue]:
    """Envelope and plan issues of an already-built profile (e.g. against a newly connected
    pen's hard limits). Empty when the profile is safe to play.

    The profile is validated again whole first: one made or changed with `model_copy(update=
    ...)` or `model_construct` skipped pydantic (a pass with no target would run until the
    zone's max_pass_s; a NaN setpoint passes every comparison)."""
    checks.instance("profile", profile, TreatmentProfile, "a TreatmentProfile: parse_profile()")
    check_limit_args(envelope, pen_limits)
    try:
        TreatmentProfile.model_validate(profile.model_dump())
    except ValidationError as exc:
        return _from_pydantic(exc)
    issues = []
    max_passes = session_limits(envelope).max_passes
    if len(profile.plan) > max_passes:
        issues.append(too_many_passes(len(profile.plan), max_passes))
    return issues + envelope_issues(profile.zones, list(enumerate(profile.plan)),
                                     profile.skin.epidermis_mm, envelope, pen_limits)


def profile_hash(profile: TreatmentProfile) -> str:
    """SHA-256 (hex) of the profile's canonical JSON: sorted keys, no whitespace."""
    canonical = json.dumps(profile.model_dump(mode="json"), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile, for session software written in other languages."""
    schema = TreatmentProfile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://smpdevice.invalid/schemas/treatment-profile-v{SCHEMA_VERSION}.json"
    return schema


# --- internals -----------------------------------------------------------------------------

_RULES = {
    "extra_forbidden": "is not a known field (check the spelling; `smp profile schema` lists them)",
    "enum": "is not a session kind: use " + ", ".join(k.value for k in SessionKind),
}


def _from_pydantic(exc: ValidationError) -> list[ProfileIssue]:
    return from_pydantic(exc, rules=_RULES)


def _valid_parts(
    data: dict[str, Any],
) -> tuple[dict[str, ZoneSettings], list[tuple[int, PlannedPass]], float | None]:
    """The zones, plan entries and epidermis that validate on their own, when the whole does not."""
    zones: dict[str, ZoneSettings] = {}
    raw_zones = data.get("zones")
    if isinstance(raw_zones, dict):
        for name, raw in raw_zones.items():
            # Invalid ones are already reported by the whole-profile validation.
            with contextlib.suppress(ValidationError):
                zones[str(name)] = ZoneSettings.model_validate(raw)
    plan: list[tuple[int, PlannedPass]] = []
    raw_plan = data.get("plan")
    if isinstance(raw_plan, list):
        for i, raw in enumerate(raw_plan):
            with contextlib.suppress(ValidationError):
                plan.append((i, PlannedPass.model_validate(raw)))
    epidermis = None
    with contextlib.suppress(ValidationError):
        epidermis = Skin.model_validate(data.get("skin") or {}).epidermis_mm
    # A plan entry may name a zone whose settings are invalid: do not call it unknown then.
    if isinstance(raw_zones, dict):
        known = {str(k) for k in raw_zones}
        plan = [(i, p) for i, p in plan if p.zone in zones or p.zone not in known]
    return zones, plan, epidermis
