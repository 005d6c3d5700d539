"""A session whose last pass made all its dots and then latched a fault or an E-stop is
complete (review 12, REV3B-5: nothing is left to play), yet the pen is latched: `smp run`'s end
says so and how to clear it before the next session. Never for a pass that simply completed."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from smpdevice.cli.run_report import RunReport, end_run
from smpdevice.outcomes import SessionOutcome
from smpdevice.passlog import PassOutcome
from smpdevice.sessions.pass_counter import PassResult


def _ended(last: PassOutcome) -> str:
    report = RunReport(port="pensim://?seed=3", planned_passes=1, session_id="S1",
                       outcome=SessionOutcome.completed)
    report.passes = [PassResult(pass_id="P1", index=0, zone="crown", outcome=last,
                                stats=None, detail="jam")]  # type: ignore[arg-type]
    out = io.StringIO()
    with pytest.raises(SystemExit) as ended:
        end_run(report, Console(file=out, width=200), who="ana", files=[], db=None)
    assert ended.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize("last", [PassOutcome.fault, PassOutcome.estop])
def test_a_pen_latched_after_the_last_dot_is_named_with_how_to_clear_it(last):
    text = _ended(last)
    assert f"the pen latched {last.value} as the last pass ended (jam)" in text, text
    assert "smp clear --port 'pensim://?seed=3'" in text, text


def test_a_pass_that_completed_says_nothing_of_the_kind():
    assert "latched" not in _ended(PassOutcome.completed)
