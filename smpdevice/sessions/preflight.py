"""What opening (or resuming) a session checks before anything is recorded or sent: its
arguments' types, the technician, the calibration, the profile against this pen's envelope,
an idle pen; and what a pass checks before it touches the pen (`pass_settings`)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence

from pydantic import ValidationError

from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from smpdevice.control.calibration import CalibrationError, require_calibration
from smpdevice.control.pen import connected
from smpdevice.control.states import StateError
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkError
from smpdevice.outcomes import ExitCode, command
from smpdevice.sessions.profiles import (
    PlannedPass,
    ProfileError,
    TreatmentProfile,
    ZoneSettings,
    check_profile,
)
from smpdevice.sessions.screening import Screening, checked_screening


def check_open_args(pen: object, passlog: object, profile: object, screening: object) -> None:
    """Plain data where a checked object belongs (a profile file's dict, screening answers)
    is refused by name, not met later as an AttributeError."""
    checks.instance("pen", pen, PenController, "a connected PenController")
    if not callable(getattr(passlog, "open_session", None)):
        raise InvalidArgument(f"passlog={type(passlog).__name__} is refused: it is no pass "
                              "log; allowed: a PassLog (PassLog.open(path)).")
    checks.instance("profile", profile, TreatmentProfile, "a TreatmentProfile, checked: "
                    "load_profile(path, envelope) or parse_profile(data, envelope)")
    checks.instance("screening", screening, Screening,
                    "a Screening: parse_screening(answers)")
    checked_screening(screening)  # a model_copy's None is no "no": ScreeningIncomplete


class PenNotIdle(SmpError):
    """A session was refused because the pen is not idle. Its hint to clear a latched fault
    names how the caller reaches the pen (`reach`: `--port URL` at the station, `--service URL`
    through `smp serve`, whose pen port would reach another pen or none)."""

    def __init__(self, state: State, fault: object, reach: Sequence[str]) -> None:
        self.state, self.fault, self.reach = state, fault, tuple(reach)
        held = {State.FAULT: "has a fault latched", State.ESTOP: "has an E-stop latched"}
        hint = ""
        if state in held:
            hint = (f" ({fault}). Remove the cause, then clear it: "
                    + command("smp", "clear", *self.reach))
        super().__init__("the pen must be idle to open a session; it "
                         + held.get(state, f"is {state.value}") + hint)

    def reached_by(self, *reach: str) -> PenNotIdle:
        return PenNotIdle(self.state, self.fault, reach)


class PenLostBeforeSession(SmpError):
    """The pen answered the handshake, then was lost (cable, power) before the session opened
    or a resume was recorded: exit 6 as a pen lost mid-session, not 2 (a bad option, file or
    port), so session software that tries again on 6 tries again here too (review 12 REVG-11)."""

    exit_code = ExitCode.LINK_LOST

    def __init__(self, why: object) -> None:
        super().__init__(f"the pen was lost (cable, power) before the session began ({why}): "
                         "nothing was played or recorded. Check the cable and the pen's power, "
                         "then start it again.")


@contextlib.contextmanager
def lost_before_session(pen: PenController,
                        opened: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Inside: connecting (`pen.open()`) and the checks before a session opens. A lost link
    there (a LinkError once the pen answered the handshake, or a request refused because the
    controller is disconnected) is raised as PenLostBeforeSession, unless `opened()` says the
    session was opened meanwhile (its own end says what was lost). A pen that never answered
    the handshake stays the port's error (exit 2: a bad port). Enter it inside `with pen:`, so
    the state is read before close() disconnects. A request refused because the pen has a
    fault or an E-stop latched is raised as PenNotIdle, naming `smp clear --port PORT`."""
    try:
        yield
    except PenLostBeforeSession:
        raise
    except SmpError as exc:
        lost = isinstance(exc, LinkError) or (
            pen.state is State.DISCONNECTED and isinstance(exc, (StateError, PenNotIdle)))
        if (isinstance(exc, StateError) and pen.state in (State.FAULT, State.ESTOP)
                and pen.identity is not None and not opened()):
            # a latched pen refused the first request (set_calibration): the controller's
            # words are the API's; a user is told the pen is latched and the command to clear
            raise PenNotIdle(pen.state, pen.last_fault, ("--port", pen.port_url)) from None
        if pen.identity is None or not lost or opened():
            raise
        raise PenLostBeforeSession(exc) from None


@contextlib.contextmanager
def reached_by(*reach: str) -> Iterator[None]:
    """A PenNotIdle or a calibration refusal raised inside names `reach` in its hint (how this
    caller reaches the pen): the service opens sessions through the same checks as the
    station, and its own pen port would reach another pen or none."""
    try:
        yield
    except PenNotIdle as exc:
        raise exc.reached_by(*reach) from None
    except CalibrationError as exc:
        told = str(exc)
        calibrate = command("smp", "calibrate", *reach)
        hint = _CALIBRATE_HINT.sub(lambda m: calibrate + (m[2] or ""), told)
        if type(exc) is not CalibrationError or hint == told:
            raise
        raise CalibrationError(hint) from None


# `smp calibrate --port PORT [--auto]` as require_calibration words it (outcomes.command quotes)
_CALIBRATE_HINT = re.compile(r"smp calibrate --port ('[^']*'|\S+)( --auto)?")


def preflight(pen: PenController, profile: TreatmentProfile, technician: str):
    """What opening (or resuming) a session checks on the pen: technician, calibration, the
    profile against this pen's envelope, an idle pen. Returns the calibration in force."""
    checks.technician(technician)  # a name, as typed: no TAB, ESC or U+202E in the record
    serial = connected(pen.identity, pen.port_url).serial
    calibration = require_calibration(pen.calibration, serial, port=pen.port_url,
                                      now=pen.validity_now())  # a replay: its recorded time
    issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
    if issues:
        raise ProfileError(issues, f"for pen {serial}")
    if pen.state is State.DISCONNECTED:  # lost since it connected: not a state to fix
        raise PenLostBeforeSession(f"the controller is {pen.state.value}")
    if pen.state is not State.IDLE:
        raise PenNotIdle(pen.state, pen.last_fault, ("--port", pen.port_url))
    return calibration


def pass_settings(profile: TreatmentProfile, planned: object) -> ZoneSettings:
    """The profile's settings for the pass `planned`, which is checked whole first (one made
    with `model_copy(update=...)` skipped pydantic: a pass with no target would run until the
    zone's max_pass_s). A zone the profile lacks is refused naming the profile's zones (it
    used to be a bare KeyError). Nothing is sent to the pen before this passes."""
    checks.instance("planned", planned, PlannedPass,
                    "a PlannedPass(zone=..., duration_s=... or impressions=...)")
    assert isinstance(planned, PlannedPass)  # for the type checker: checked just above
    try:
        PlannedPass.model_validate(planned.model_dump())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'planned'}: {e['msg']}"
                             for e in exc.errors())
        raise InvalidArgument(
            f"planned={repr(planned)[:120]} is refused: {problems}; allowed: a zone and "
            "exactly one of duration_s (s) or impressions, each above 0. Nothing was sent to "
            "the pen."
        ) from None
    settings = profile.zones.get(planned.zone)
    if settings is None:
        zones = ", ".join(sorted(profile.zones)) or "none"
        raise InvalidArgument(
            f"planned.zone={planned.zone!r} is refused: this session's profile has no "
            f"settings for it; allowed: a zone of the profile ({zones}). Nothing was sent "
            "to the pen: plan passes in the profile's zones, or add the zone to the "
            "profile and open a new session.")
    return settings
