"""`session.run`'s `quick_pass_s` and `smp demo --quick` (demos, tests): every pass planned
longer, shortened to it; one rule for both."""

from __future__ import annotations

from typing import Any


def shortened(profile: Any, quick_pass_s: float, pen: Any,
              source: str = "uploaded (with quick_pass_s)") -> Any:
    """`profile` with every pass planned longer than `quick_pass_s` made a timed pass of it;
    never a longer one (a pass in impressions keeps them unless they take longer). The changed
    profile is checked again against `pen`'s envelope and limits, as the uploaded one was
    (ProfileError from `source`): `model_copy` skips every check."""
    from smpdevice.sessions.profiles import ProfileError, check_profile

    plan = []
    for planned in profile.plan:
        planned_s = planned.duration_s if planned.impressions is None else \
            planned.impressions * profile.zones[planned.zone].period_ms / 1000
        if planned_s > quick_pass_s:
            planned = planned.model_copy(update={"duration_s": float(quick_pass_s),
                                                 "impressions": None})
        plan.append(planned)
    profile = profile.model_copy(update={"plan": plan})
    issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
    if issues:
        raise ProfileError(issues, source)
    return profile
