"""Review 18e: `next_steps` refuses a remaining pass count below zero, and `classify_session`
any text that is no pass outcome ('Completed', 'bogus'), as InvalidArgument naming the
argument (docs/integration.md "Outcomes"); before, they were taken (a text as `incomplete`)."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.outcomes import SessionOutcome, classify_session, next_steps
from smpdevice.records.model import PassOutcome


@pytest.mark.parametrize("remaining", [-5, -1, 10**12, True, 1.0])
def test_next_steps_refuses_a_remaining_pass_count_that_is_no_whole_number_from_zero(remaining):
    with pytest.raises(InvalidArgument, match="remaining_passes"):
        next_steps(SessionOutcome.fault, port="pensim://", session_id="S1",
                   remaining_passes=remaining)


def test_next_steps_takes_zero_remaining_passes():
    assert next_steps(SessionOutcome.fault, port="pensim://", session_id="S1",
                      remaining_passes=0)


@pytest.mark.parametrize("outcome", ["Completed", "bogus", "", "completed "])
def test_classify_session_refuses_a_text_that_is_no_pass_outcome(outcome):
    with pytest.raises(InvalidArgument, match=r"pass_outcomes\[1\]"):
        classify_session(["completed", outcome], 2)


def test_classify_session_takes_every_pass_outcome():
    for outcome in PassOutcome:  # the enum and its text alike
        assert classify_session([outcome], 1) in SessionOutcome
        assert classify_session([outcome.value], 1) in SessionOutcome
    assert classify_session(["completed"], 1) is SessionOutcome.completed
    # a pass begun and not ended, as a session's summary names it
    assert classify_session(["in_progress"], 1) is SessionOutcome.incomplete
