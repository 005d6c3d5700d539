"""`play()` again on the same session, passes after close/suspend, and `run_pass`/`open` given
what they cannot use (review9a R02, R03). On the simulator's virtual clock.

A second `play()` (a Play button pressed twice, a retry) used to play the whole plan again,
completed passes included; after `close()` it armed the pen, then failed. A pass of a zone the
profile lacks was a bare KeyError, and a profile or screening given as plain data an
AttributeError."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control import State
from smpdevice.control.states import StateError
from smpdevice.passlog import PassOutcome
from smpdevice.sessions.profiles import PlannedPass, ProfileError
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.sessions.conftest import states_seen
from tests.smpdevice.sessions.test_session import CLEAR, open_session, short_profile

pytestmark = pytest.mark.virtual_time


def test_play_again_never_plays_a_completed_pass_twice(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    first = session.play()
    assert [r.outcome for r in first] == [PassOutcome.completed] * 2
    assert session.remaining == []
    states = states_seen(pen)
    again = session.play()  # nothing left: nothing is sent
    assert again == first and State.ARMED not in states
    summary, _ = session.close()
    assert [p.index for p in passlog.passes(session.session_id)] == [0, 1]
    assert summary["passes"] == 2 and session.outcome.value == "completed"


def test_play_again_after_a_stop_is_refused_and_remaining_says_what_is_left(sim, pen, passlog):
    """`remaining` counts as a resume does (the stopped pass for the dots it has not made,
    then the rest); play() again is refused (review 10a R02): a second play() in the same
    part skipped the resume's checks and no replay could play it."""
    profile = short_profile(0.2, passes=2)
    plan = [PlannedPass(zone=profile.plan[0].zone, impressions=8), profile.plan[1]]
    session = open_session(pen, passlog, profile.model_copy(update={"plan": plan}))
    [stopped] = session.play(should_stop=lambda: session._recorder.snapshot().impressions >= 3)
    assert stopped.outcome is PassOutcome.stopped
    dots = stopped.stats.impressions
    assert 3 <= dots < 8
    assert [(i, p.impressions) for i, p in session.remaining] == [(0, 8 - dots), (1, None)]
    states = states_seen(pen)
    with pytest.raises(StateError, match=r"play\(\) refused.*stopped before the end of its "
                                         r"plan \(its pass 1 ended stopped\)") as refused:
        session.play()
    assert "nothing was sent to the pen" in str(refused.value)
    assert f"smp run --resume {session.session_id}" in str(refused.value)
    assert states == [] and len(passlog.passes(session.session_id)) == 1
    session.close()
    assert session.outcome.value == "interrupted"


def test_after_a_fault_play_again_is_refused_a_resume_goes_on_and_replays(sim, pen, passlog):
    """A jam in pass 1: play() again is refused; the documented way, suspend(), clear,
    resume, plays pass 1's remainder and pass 2, and the replay of both parts matches
    (review 10a R02; a clear before the suspend is inside part 1: see integration.md)."""
    from smpdevice.replay.runner import replay_session
    from smpdevice.sessions.resume import resume_session
    from tests.smpdevice.virtual_time import after

    session = open_session(pen, passlog, short_profile(0.6, passes=2))
    after(sim.clock, 0.3, lambda: sim.inject("jam"))
    [jammed] = session.play()
    assert jammed.outcome is PassOutcome.fault
    with pytest.raises(StateError, match=r"its pass 1 ended fault.*suspend\(\) it"):
        session.play()
    assert pen.state is State.FAULT and len(passlog.passes(session.session_id)) == 1
    session.suspend()
    sim.clear("jam")
    pen.clear_faults()
    resumed = resume_session(pen, passlog, session.session_id, technician="ana")
    results = resumed.play()
    assert [(r.index, r.outcome) for r in results] == [(0, PassOutcome.completed),
                                                       (1, PassOutcome.completed)]
    resumed.close()
    assert resumed.outcome.value == "completed"
    report = replay_session(passlog, session.session_id)
    assert report.parts == 2 and report.match, (report.difference, report.notes)


@pytest.mark.parametrize("end", ["close", "suspend"])
def test_no_pass_after_the_session_ended_and_the_pen_is_not_touched(sim, pen, passlog, end):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.play(should_stop=lambda: bool(session.results))  # one pass, then stop
    getattr(session, end)()
    states = states_seen(pen)
    for call in (session.play, lambda: session.run_pass(session.profile.plan[1])):
        with pytest.raises(StateError, match=session.session_id) as refused:
            call()
        assert "nothing was sent to the pen" in str(refused.value)
        if end == "suspend":
            assert "--resume" in str(refused.value)
    assert states == [] and pen.state is State.IDLE
    assert len(passlog.passes(session.session_id)) == 1


def test_a_pass_of_a_zone_the_profile_lacks_is_refused_naming_its_zones(sim, pen, passlog):
    profile = short_profile(0.2, passes=1)
    crown_only = profile.model_copy(update={"zones": {"crown": profile.zones["crown"]},
                                            "plan": [PlannedPass(zone="crown", duration_s=0.2)]})
    session = open_session(pen, passlog, crown_only)
    states = states_seen(pen)
    with pytest.raises(InvalidArgument, match=r"'hairline'.*\(crown\)"):
        session.run_pass(PlannedPass(zone="hairline", duration_s=0.2))
    with pytest.raises(InvalidArgument, match="planned="):
        session.run_pass({"zone": "crown", "duration_s": 0.2})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="index="):
        session.run_pass(crown_only.plan[0], index=-1)
    assert states == [] and pen.state is State.IDLE
    assert passlog.passes(session.session_id) == []
    session.close()


def test_open_refuses_plain_data_for_the_profile_and_the_screening(sim, pen, passlog):
    profile = short_profile(0.2, passes=1)
    screening = parse_screening(CLEAR)
    for kwargs, name in (({"profile": profile.model_dump(mode="json"),
                           "screening": screening}, "profile="),
                         ({"profile": profile, "screening": dict(CLEAR)}, "screening="),
                         ({"profile": profile, "screening": screening, "passlog": {}},
                          "passlog=")):
        with pytest.raises(InvalidArgument, match=name):
            TreatmentSession.open(pen, kwargs.get("passlog", passlog), kwargs["profile"],
                                  technician="ana", screening=kwargs["screening"])
    assert passlog.sessions() == []


def test_a_second_play_while_one_plays_is_refused_and_the_first_goes_on(sim, pen, passlog):
    """A Play button that starts `play()` again while it runs (here from its own progress
    callback): refused at once; the pass under way completes, played once."""
    session = open_session(pen, passlog, short_profile(0.3, passes=1))
    refused: list[str] = []

    def press_play_again(progress) -> None:
        if not refused:
            with pytest.raises(StateError, match="already playing") as exc:
                session.play()
            refused.append(str(exc.value))
            with pytest.raises(StateError, match="already playing"):
                session.run_pass(session.profile.plan[0])

    results = session.play(on_progress=press_play_again)
    assert refused and "nothing was sent to the pen" in refused[0]
    assert [r.outcome for r in results] == [PassOutcome.completed]
    session.close()
    assert len(passlog.passes(session.session_id)) == 1


def test_a_pass_or_profile_changed_past_validation_is_refused(sim, pen, passlog):
    """`model_copy(update=...)` skips pydantic: a pass with no target (it would run until the
    zone's max_pass_s) or a NaN setpoint is refused before the pen is touched."""
    profile = short_profile(0.2, passes=1)
    no_target = profile.plan[0].model_copy(update={"duration_s": None})
    with pytest.raises(ProfileError, match=r"plan\[0\].*exactly one"):
        open_session(pen, passlog, profile.model_copy(update={"plan": [no_target]}))
    nan_depth = profile.zones["top"].model_copy(update={"depth_mm": float("nan")})
    with pytest.raises(ProfileError, match="zones.top.depth_mm"):
        open_session(pen, passlog, profile.model_copy(
            update={"zones": {**profile.zones, "top": nan_depth}}))
    assert passlog.sessions() == []
    session = open_session(pen, passlog, profile)
    states = states_seen(pen)
    for planned in (no_target, profile.plan[0].model_copy(update={"duration_s": -1.0})):
        with pytest.raises(InvalidArgument, match="planned=.*Nothing was sent"):
            session.run_pass(planned)
    assert states == [] and passlog.passes(session.session_id) == []
    session.close()
