"""Session 21b (review of 6bc3071): an E-stop held while the link was down (recorded as an
`estop` input with `held`, session 21) leaves no frame and no state change of its own, so a
replay that never pressed it had nothing to differ on:

- after a loss with no reconnect (the session closed while the cable was out), the replay
  never applied it (inputs were not applied while its recorded pen was unplugged, unless a
  reconnect was still to come), and said `match` whether it pressed it or not;
- one recorded while the controller kept its link (a record that lies), or pressed as the
  session closed, was waited for in a thread that the replay's end left behind: `match`.

Now inputs go on while the recorded pen is unplugged up to a held E-stop too, its press
waits for the replayed controller to be offline and, if it never is, is a difference
(`input #n`); one never pressed by the replay's end is a difference. Virtual time, the real
simulator, controller, pass log and recording."""

from __future__ import annotations

import json

import pytest

from smpdevice.control import State
from smpdevice.errors import SmpError
from smpdevice.records.frames import read_recording
from tests.smpdevice.replay.conftest import assert_matches, record_acted, replay_runs

pytestmark = pytest.mark.virtual_time

SESSIONS: list = []


def _pull_then_estop(sim, pen) -> None:
    """The cable pulled, the E-stop pressed (held), never reconnected: play() ends there."""
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
    with pytest.raises(SmpError, match="link to the pen is down"):
        pen.estop()
    assert pen.state is State.DISCONNECTED


def _kept(sim, pen, session, log) -> None:
    SESSIONS.append(session)


def _says_held_between(sim, pen) -> None:
    """A record that lies: a held E-stop written while the link is up."""
    SESSIONS[-1].recording.inputs.held_estop("disconnected")


def _says_held_at_close(sim, pen, session, log) -> None:
    session.recording.inputs.held_estop("disconnected")


def _inputs(acted) -> list[dict]:
    return [json.loads(e.data) for e in read_recording(acted.recording).channel("/input")]


def test_a_held_estop_with_no_reconnect_after_it_is_pressed_and_matches(tmp_path):
    acted = record_acted(tmp_path, _pull_then_estop, settle_s=0.1)
    kinds = [i["kind"] for i in _inputs(acted)]
    assert "reconnect" not in kinds and kinds.index("link_lost") < kinds.index("estop"), kinds
    assert_matches(acted, 3)  # (one left unpressed at the end would be a difference)


@pytest.mark.parametrize("where", ["between passes", "as the session closes"])
def test_a_held_estop_the_replayed_controller_cannot_take_is_a_difference(tmp_path, where):
    if where == "between passes":
        acted = record_acted(tmp_path, _says_held_between, before=_kept)
    else:
        acted = record_acted(tmp_path, None, finish=_says_held_at_close)
    assert {"kind": "estop", "held": True, "state": "disconnected"} in _inputs(acted)
    assert "link_lost" not in [i["kind"] for i in _inputs(acted)]
    for report in replay_runs(acted, 2):
        assert not report.match, report.notes
        if where == "as the session closes":  # the input, or the controller waited for
            assert report.difference.what in ("input", "state"), report.difference  # past
            # the recording's end, judging its silence: `idle -> disconnected`
