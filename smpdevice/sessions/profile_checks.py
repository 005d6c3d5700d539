"""The envelope and plan checks of a treatment profile (`smpdevice.sessions.profiles`), apart
from the profile's shape: every zone's setpoints against its envelope (narrowed for the
client's skin and the pen's hard limits), every pass against the zone's longest pass, and the
whole plan against the envelope's session limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.envelope import (
    SessionLimits,
    ZoneEnvelope,
    check_setpoints,
    for_skin,
    load_envelope,
    narrowed,
    strokes_per_impression,
)
from smpdevice.errors import SmpError
from smpdevice.issues import Issue as ProfileIssue
from smpdevice.issues import unit_of

if TYPE_CHECKING:
    from smpdevice.sessions.profiles import PenLimits, PlannedPass, ZoneSettings


PEN_LIMIT_KEYS = ("depth_mm", "speed_hz", "duty_pct", "period_ms")  # envelope.narrowed's


def check_limit_args(envelope: object, pen_limits: object) -> None:
    """InvalidArgument, before any check, for an `envelope` or `pen_limits` that is none: a
    path where the zones go was read as its letters ("zones ., a, e, l ... unknown")."""
    if envelope is not None:
        checks.instance("envelope", envelope, Mapping, "a mapping of zone name to "
                        "ZoneEnvelope (load_envelope(path), station_envelope().zones), or None")
        assert isinstance(envelope, Mapping)  # for the type checker: checked just above
        for name, zone in envelope.items():
            checks.instance(f"envelope[{str(name)[:40]!r}]", zone, ZoneEnvelope,
                            "a ZoneEnvelope (load_envelope(path) makes them)")
    if pen_limits is None:
        return
    allowed = ("a mapping as pen.pen_limits() returns: {'depth_mm': (low, high), ...} with keys "
               f"among {', '.join(PEN_LIMIT_KEYS)}, or None")
    checks.instance("pen_limits", pen_limits, Mapping, allowed)
    assert isinstance(pen_limits, Mapping)  # for the type checker: checked just above
    for key, bounds in pen_limits.items():
        if key not in PEN_LIMIT_KEYS or not isinstance(bounds, tuple | list) or len(bounds) != 2:
            raise InvalidArgument(f"pen_limits[{str(key)[:40]!r}]={str(bounds)[:60]} is "
                                  f"refused; allowed: {allowed}.")
        for end, bound in zip(("low", "high"), bounds, strict=True):
            checks.finite_number(f"pen_limits[{key!r}] {end}", bound, -1e6, 1e6)


def session_limits(envelope: Mapping[str, ZoneEnvelope] | None) -> SessionLimits:
    """The plan limits of an envelope (a plain mapping of zones has the defaults)."""
    return getattr(envelope, "session", None) or SessionLimits()


def too_many_passes(n: int, cap: int) -> ProfileIssue:
    return ProfileIssue("plan", f"{n} passes", (
        f"has {n} passes, above the envelope's session.max_passes {cap}; split the treatment "
        "into sessions"), missing=True)


def envelope_issues(
    zones: Mapping[str, ZoneSettings],
    plan: list[tuple[int, PlannedPass]],
    epidermis_mm: float | None,
    envelope: Mapping[str, ZoneEnvelope] | None,
    pen_limits: PenLimits | None,
) -> list[ProfileIssue]:
    envelope = load_envelope() if envelope is None else envelope
    source = getattr(envelope, "source", None)  # the file it came from, named in a refusal
    issues: list[ProfileIssue] = []
    effective: dict[str, ZoneEnvelope] = {}
    for name, settings in zones.items():
        if name not in envelope:
            issues.append(ProfileIssue(
                f"zones.{name}", name,
                f"is not a zone of the safety envelope (known: {', '.join(sorted(envelope))})"))
            continue
        zone_env = for_skin(envelope[name], epidermis_mm)
        if pen_limits:
            try:
                zone_env = narrowed(zone_env, **dict(pen_limits))
            except SmpError as exc:
                issues.append(ProfileIssue(f"zones.{name}", name, str(exc)))
                continue
        effective[name] = zone_env
        skin_floor = zone_env.epidermal_floor_mm > envelope[name].epidermal_floor_mm
        own = _limits_broken(for_skin(envelope[name], epidermis_mm), settings) \
            if pen_limits else set()  # what the envelope alone refuses, before the pen's
        for v in check_setpoints(zone_env, depth_mm=settings.depth_mm, speed_hz=settings.speed_hz,
                                 duty_pct=settings.duty_pct, period_ms=settings.period_ms):
            limit = f"{v.limit:g}{_unit(v.parameter)}"
            if v.parameter == "strokes_per_impression":
                issues.append(ProfileIssue(
                    f"zones.{name}", _beyond(strokes_per_impression(
                        settings.speed_hz, settings.duty_pct, settings.period_ms), v.limit),
                    f"strokes per impression (speed_hz x period_ms x duty_pct) is above the "
                    f"maximum {limit} of zone '{name}'; lower speed, period or duty"))
                continue
            why = ""
            if v.parameter == "depth_mm" and v.value < v.limit and skin_floor:
                why = " (skin.epidermis_mm + margin)"
            elif pen_limits and v.parameter in pen_limits and v.parameter not in own:
                why = " (zone envelope within the pen's hard limits)"  # the pen's bound
            elif source:
                why = f" (envelope {source})"
            issues.append(ProfileIssue(f"zones.{name}.{v.parameter}", v.value,
                                       f"{v.rule} {limit} of zone '{name}'{why}"))
    for i, planned in plan:
        planned_zone = zones.get(planned.zone)
        if planned_zone is None:
            known = ", ".join(sorted(zones)) or "none valid"
            issues.append(ProfileIssue(f"plan[{i}].zone", planned.zone,
                                       f"is not one of this profile's zones ({known})"))
            continue
        planned_env = effective.get(planned.zone)
        if planned_env is None:
            continue  # the zone itself is already reported
        max_s = planned_env.max_pass_s
        if planned.duration_s is not None and planned.duration_s > max_s:
            issues.append(ProfileIssue(
                f"plan[{i}].duration_s", planned.duration_s,
                f"is above the longest pass {max_s:g} s of zone '{planned.zone}'; split it"))
        if planned.impressions is not None:
            needed_s = planned.impressions * planned_zone.period_ms / 1000
            if needed_s > max_s:
                issues.append(ProfileIssue(
                    f"plan[{i}].impressions", planned.impressions,
                    f"takes {needed_s:g} s at period_ms {planned_zone.period_ms:g}, above the "
                    f"longest pass {max_s:g} s of zone '{planned.zone}'; split it"))
    issues.extend(_needle_time_issues(zones, plan, envelope))
    return issues


def _limits_broken(zone: ZoneEnvelope, settings: ZoneSettings) -> set[str]:
    return {v.parameter for v in check_setpoints(
        zone, depth_mm=settings.depth_mm, speed_hz=settings.speed_hz,
        duty_pct=settings.duty_pct, period_ms=settings.period_ms)}


def _needle_time_issues(zones: Mapping[str, ZoneSettings], plan: list[tuple[int, PlannedPass]],
                        envelope: Mapping[str, ZoneEnvelope] | None) -> list[ProfileIssue]:
    """The plan's total needle time against the envelope's per-session limit."""
    session = session_limits(envelope)
    total_s = 0.0
    for _, planned in plan:
        if planned.duration_s is not None:
            total_s += planned.duration_s
        elif planned.zone in zones and planned.impressions is not None:
            total_s += planned.impressions * zones[planned.zone].period_ms / 1000
    if total_s <= session.max_needle_s:
        return []
    return [ProfileIssue("plan", f"{total_s:g} s", (
        f"asks for {total_s:g} s ({total_s / 3600:.1f} h) of needle time, above the envelope's "
        f"session.max_needle_s {session.max_needle_s:g} s; split the treatment into sessions"),
        missing=True)]


def _unit(parameter: str) -> str:
    return unit_of(parameter)



# `smp run`'s own refusal of a profile with nothing to play (cli/run.py says the same after the
# file's name), so that `smp profile check` refuses what a run refuses (docs/safety.md).
NO_PLAN = "has no plan of passes to play; add a `plan:` list"


def playable_issues(plan: list[PlannedPass]) -> list[ProfileIssue]:
    """What a run refuses in a profile that is otherwise valid: an empty or missing plan."""
    return [] if plan else [ProfileIssue("", None, NO_PLAN, missing=True)]


def _beyond(value: float, limit: float) -> float:
    """`value` with 7 significant digits, or more until it shows past `limit` (8.0000052,
    not 8.0, above the maximum 8)."""
    for digits in range(7, 18):
        shown = float(f"{value:.{digits}g}")
        if shown > limit:
            return shown
    return value
