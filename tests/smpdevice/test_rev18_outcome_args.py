"""Review 18: `next_steps` and `classify_session` check what they are given. An outcome as its
text (as `smp sessions show --json` gives it) is the same outcome, so a fault still says to
clear the pen; a missing port is refused rather than written into a command as `None`; a plan
count or pass outcomes of the wrong kind are refused with InvalidArgument."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.outcomes import SessionOutcome, classify_session, next_steps


@pytest.mark.parametrize("outcome, step", [("fault", "smp clear --port /dev/ttyACM0"),
                                           ("estop", "smp clear --port /dev/ttyACM0"),
                                           ("link_lost", "smp info --port /dev/ttyACM0"),
                                           ("log_error", "smp sessions verify")])
def test_an_outcome_given_as_its_text_gives_the_same_steps(outcome, step):
    as_text = next_steps(outcome, port="/dev/ttyACM0", session_id="S1", remaining_passes=1)
    as_enum = next_steps(SessionOutcome(outcome), port="/dev/ttyACM0", session_id="S1",
                         remaining_passes=1)
    assert as_text == as_enum and any(step in line for line in as_text), as_text


@pytest.mark.parametrize("kwargs, named", [
    (dict(outcome="crashed"), "outcome="), (dict(outcome=3), "outcome="),
    (dict(port=None), "port="), (dict(port=""), "port="), (dict(port="a\nb"), "port="),
    (dict(session_id=None), "session_id="), (dict(remaining_passes=True), "remaining_passes="),
    (dict(remaining_passes=1.5), "remaining_passes="), (dict(port=None, service=""), "service=")])
def test_next_steps_refuses_arguments_it_cannot_use(kwargs, named):
    args = {**dict(outcome=SessionOutcome.fault, port="/dev/ttyACM0", session_id="S1",
                   remaining_passes=0), **kwargs}
    outcome = args.pop("outcome")
    with pytest.raises(InvalidArgument, match=named):
        next_steps(outcome, **args)


def test_a_service_needs_no_port():
    steps = next_steps("fault", port=None, session_id="S1", remaining_passes=0,
                       service="http://127.0.0.1:8470")
    assert "smp clear --service http://127.0.0.1:8470" in steps[0]


@pytest.mark.parametrize("args, named", [
    (([], -1), "planned_passes="), ((["completed"], True), "planned_passes="),
    ((["completed"], 1.0), "planned_passes="), (("completed", 1), "pass_outcomes="),
    ((b"completed", 1), "pass_outcomes="), ((5, 1), "pass_outcomes="),
    (([None], 1), r"pass_outcomes\[0\]="), ((["completed", 1], 2), r"pass_outcomes\[1\]=")])
def test_classify_session_refuses_arguments_of_the_wrong_kind(args, named):
    with pytest.raises(InvalidArgument, match=named):
        classify_session(*args)


def test_classify_session_still_takes_any_iterable_of_texts():
    assert classify_session(iter(["completed", "fault"]), 3) is SessionOutcome.fault
    assert classify_session((), 0) is SessionOutcome.completed
    assert classify_session([], 2, pen_state="estop") is SessionOutcome.estop
