"""The arguments of `resume_session`, checked before the pass log is read or written: plain
data where a checked object belongs (screening answers, a profile file's dict), a naive time
or a technician's name no record may hold is refused by name (`InvalidArgument`, an
`SmpError`), never met later as an AttributeError or a bare ValueError (review 12 REVF-10)."""

from __future__ import annotations

from datetime import datetime

from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.screening import Screening

_PASSLOG_CALLS = ("session", "resumptions", "resume_session")


def check_resume_args(pen: object, passlog: object, session_id: object, *, technician: object,
                      screening: object, profile: object, now: object,
                      close_how: object) -> None:
    """Refuse what `resume_session` cannot use, naming the argument and what is allowed.
    The technician is checked here too: a session with nothing left records the pen's count
    under that name before the preflight would check it."""
    from smpdevice.sessions.resume import require_session_id

    checks.instance("pen", pen, PenController, "a connected PenController")
    if not all(callable(getattr(passlog, call, None)) for call in _PASSLOG_CALLS):
        raise InvalidArgument(f"passlog={type(passlog).__name__} is refused: it is no pass "
                              "log; allowed: a PassLog (PassLog.open(path)).")
    require_session_id(session_id)
    checks.technician(technician)
    checks.instance("screening", screening, (Screening, type(None)),
                    "a Screening (parse_screening(answers)), or None when it is not due")
    checks.instance("profile", profile, (TreatmentProfile, type(None)),
                    "a TreatmentProfile, checked: load_profile(path, envelope) or "
                    "parse_profile(data, envelope); or None (the session's own)")
    checks.instance("now", now, (datetime, type(None)),
                    "a timezone-aware datetime (e.g. datetime.now(UTC)), or None")
    if isinstance(now, datetime) and now.utcoffset() is None:
        raise InvalidArgument(f"now={now!r} is refused: it has no time zone; allowed: a "
                              "timezone-aware datetime (e.g. datetime.now(UTC)), or None.")
    checks.instance("close_how", close_how, (str, type(None)), "a text, or None")
