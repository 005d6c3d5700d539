"""The zones a controller holds: every envelope checked whole when it is taken, kept read-only.

A `ZoneEnvelope` checks its limits (finite numbers, the absolute caps, floor below ceiling)
only when it is constructed: pydantic's `model_copy(update=...)` and `model_construct()` skip
every validator, so a zone derived that way may hold a ceiling of 2 mm or NaN (which passes
every comparison). The controller therefore never uses a zone it was given as it is: each is
rebuilt here from its values, which checks it again (review 9a R04), and the controller keeps
them in a read-only mapping, so no caller can swap a zone in after the check, and hands out
only copies, so none can change one in place either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from smpdevice.envelope import (
    CAPS,
    EnvelopeError,
    InvalidEnvelope,
    SessionLimits,
    Violation,
    ZoneEnvelope,
)
from smpdevice.issues import Issue, join


def checked_zone(zone: ZoneEnvelope, name: str = "zone") -> ZoneEnvelope:
    """A fresh `ZoneEnvelope` with the values of `zone`, checked whole (InvalidEnvelope naming
    `name`.field otherwise). A subclass comes back as a plain ZoneEnvelope: only the model's
    own rules decide."""
    issues: list[Issue] = []
    fresh = _rebuilt(ZoneEnvelope, zone, name, issues)
    if fresh is None:
        raise InvalidEnvelope(issues)
    return fresh


_SETPOINT_CAPS = ("depth_mm", "speed_hz", "duty_pct", "period_ms")


def require_within_caps(zone_name: str, values: dict[str, float]) -> None:
    """Refuse (EnvelopeError) setpoints past the absolute caps (docs/safety.md), whatever the
    active zone says: the last guard should a zone have been changed in place after its check
    (review 18). A handful of comparisons: NaN fails them too."""
    violations = [Violation(key, values[key], CAPS[key][1] if values[key] > CAPS[key][1]
                            else CAPS[key][0], "is outside the absolute cap at")
                  for key in _SETPOINT_CAPS
                  if not CAPS[key][0] <= values[key] <= CAPS[key][1]]
    if violations:
        raise EnvelopeError(zone_name, violations)


def _rebuilt(model: Any, value: Any, name: str, issues: list[Issue]) -> Any:
    if not isinstance(value, model):
        issues.append(Issue(name, value, f"is not a {model.__name__}"))
        return None
    try:  # every value the instance holds, unknown ones too (extra="forbid" reports them)
        return model(**vars(value))
    except InvalidEnvelope as exc:
        issues.extend(Issue(join(name, i.path), i.value, i.rule, i.missing) for i in exc.issues)
    return None


class FrozenEnvelope(Mapping[str, ZoneEnvelope]):
    """Zones by name and the session's plan limits, each checked whole when this was made;
    read-only (a controller's `zones`). Make one with `frozen_envelope`, which checks them.
    `source`: the file they were read from (None: the built-in zones), which refusals name as
    the `Envelope` it was made from does (profile_checks: "(envelope PATH)")."""

    __slots__ = ("_session", "_source", "_zones")

    def __init__(self, zones: dict[str, ZoneEnvelope], session: SessionLimits,
                 source: str | None = None) -> None:
        self._zones = zones
        self._session = session
        self._source = source

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def session(self) -> SessionLimits:
        return self._session.model_copy()  # a copy: the one kept here is never handed out

    def __getitem__(self, name: str) -> ZoneEnvelope:
        # A copy (review 18e): changed in place (object.__setattr__), it changes nothing the
        # guard checks; values(), items() and get() all come through here.
        return self._zones[name].model_copy()

    def __iter__(self) -> Iterator[str]:
        return iter(self._zones)

    def __len__(self) -> int:
        return len(self._zones)

    def __repr__(self) -> str:
        return f"FrozenEnvelope({sorted(self._zones)}, {self._session!r})"


def frozen_envelope(zones: Mapping[str, ZoneEnvelope]) -> FrozenEnvelope:
    """`zones` (and its `session` limits and `source`, when it has some: an `Envelope` from a
    file) checked whole again and copied into a read-only mapping. InvalidEnvelope lists every
    issue."""
    issues: list[Issue] = []
    checked: dict[str, ZoneEnvelope] = {}
    for name, zone in zones.items():
        fresh = _rebuilt(ZoneEnvelope, zone, str(name), issues)
        if fresh is not None:
            checked[name] = fresh
    session = getattr(zones, "session", None)
    limits = SessionLimits() if session is None else _rebuilt(SessionLimits, session,
                                                                "session", issues)
    if issues:
        raise InvalidEnvelope(issues)
    source = getattr(zones, "source", None)
    return FrozenEnvelope(checked, limits, source if isinstance(source, str) else None)
