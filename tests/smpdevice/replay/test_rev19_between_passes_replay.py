"""Review 19 (fixd1): a session ended between passes by an E-stop or a fault that a technician
cleared before the next pass (review 19's new flow: play() ends, outcome estop/fault, left
open) is recorded, but its recording does not replay: `replay_session` (`smp replay`) names a
difference at the clear.

docs/simulator.md "The technician's inputs are inputs, not differences": an `estop` and a
`clear` are recorded on `/input` and "the replay applies each at the same point of the
conversation: after the same decision"; "`match` (exit 0) says this version decides as the
field one did". Found: "first difference: end #6 ...: expected ClearFaults {}; got nothing more
from the controller" (E-stop), "command #5 ...: expected ClearFaults {}; got Disarm {}" (fault).
The code before review 19 (which played on) fails the same way: the inputs are not applied
before the replayed session's next decision between passes.

Virtual time, real simulator, real pass log and recording; the other actor runs in another
thread right after pass 1's end is recorded, as tests/smpdevice/sessions/
test_rev19_interrupted_between_passes.py does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smpdevice.control import State
from tests.smpdevice.replay.conftest import record_acted, replay_runs

pytestmark = pytest.mark.virtual_time


def _estop_and_clear(sim, pen) -> None:
    pen.estop()
    pen.clear_faults()


def _fault_and_clear(sim, pen) -> None:
    sim.inject("cartridge_removed")
    pen.wait_for_state(State.FAULT, timeout_s=5)
    sim.inject("cartridge_removed", on=False)
    pen.clear_faults()


def _played_then_replayed(tmp_path, act: Callable) -> tuple[str, str, object]:
    """A recorded 3-pass session; `act(sim, pen)` in another thread once pass 1's end is
    recorded. (judged pen state, outcome, replay report)."""
    acted = record_acted(tmp_path, act)
    (report,) = replay_runs(acted, 1)
    return acted.judged, acted.outcome, report


@pytest.mark.parametrize(("act", "state"), [(_estop_and_clear, "estop"),
                                            (_fault_and_clear, "fault")])
def test_a_latch_cleared_between_passes_replays(tmp_path, act, state):
    judged, outcome, report = _played_then_replayed(tmp_path, act)
    assert judged == state and outcome == state  # the run itself: as review 19 promises
    assert report.match, report.difference
    # at the first try: the check between passes waits for the recorded inputs, not on timing
    assert not [note for note in report.notes if "matched on replay" in note], report.notes
