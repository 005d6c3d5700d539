"""Session 21 (known gap of session 20): an E-stop pressed while the link is down was not
recorded as an input: no ESTOP frame crosses a dead port (so the tap never saw one) and the
controller stays `disconnected` (no state change), yet its reconnect tells the pen of the
latch. The replay, never pressing it, differed at the reconnect: `first difference: command #5
...: expected EStop {} (the reconnect's handshake, its command 4 of 4); got nothing more: its
reconnect() returned connected`.

Now the controller tells `held_estop_listeners` of an E-stop it holds while offline
(control/safety.py `_latch_locally`), the recording keeps it on `/input` (`estop`, `held`,
state `disconnected`), and the replay presses it at its point once its controller lost the
link too. Virtual time, the real simulator, controller, pass log and recording; the cable is
pulled, the E-stop pressed and the pen reconnected by another thread once pass 1's end is
logged. Each replay runs several times from a fresh controller."""

from __future__ import annotations

import json

import pytest

from firmware_protocol import StreamDecoder
from smpdevice.control import State
from smpdevice.errors import SmpError
from smpdevice.records.frames import read_recording
from tests.smpdevice.replay.conftest import assert_matches, record_acted, replay_runs

pytestmark = pytest.mark.virtual_time

RUNS = 5


def _estop_while_unplugged(sim, pen) -> None:
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
    with pytest.raises(SmpError, match="link to the pen is down"):
        pen.estop()  # held: no frame, no state change
    assert pen.state is State.DISCONNECTED
    sim.reconnect()
    pen.reconnect()  # tells the pen of the latch
    assert pen.state is State.ESTOP


@pytest.fixture
def held(tmp_path):
    return record_acted(tmp_path, _estop_while_unplugged, settle_s=0.1)


def test_the_held_estop_is_recorded_as_an_input(held):
    assert (held.judged, held.outcome, held.passes) == ("estop", "estop", ("completed",))
    rec = read_recording(held.recording)
    inputs = [json.loads(e.data) for e in rec.channel("/input")]
    kinds = [i["kind"] for i in inputs]
    assert kinds.index("link_lost") < kinds.index("estop") < kinds.index("reconnect"), kinds
    estop = inputs[kinds.index("estop")]
    assert estop == {"kind": "estop", "held": True, "state": "disconnected"}, estop
    sent = StreamDecoder().feed(b"".join(e.data for e in rec.channel("/reconnect/host")))
    assert "EStop" in [type(f.message).__name__ for f in sent]  # the reconnect told the pen


def test_an_estop_pressed_while_the_link_was_down_replays_as_a_match(held):
    assert_matches(held, RUNS)


def test_into_sim_plays_it_and_matches(held):
    for report in replay_runs(held, 2, into_sim=True):
        assert report.match, (report.difference, report.notes)


def test_without_the_held_estop_input_it_differs_as_before(held, monkeypatch):
    """A recording made before held E-stops were kept (no such input): nothing is guessed,
    the reconnect's handshake differs where it tells the pen of the latch."""
    from smpdevice.replay import script
    from smpdevice.replay.inputs import parse_input

    monkeypatch.setattr(script, "parse_input", lambda data, after, t_s: None
                        if b'"held"' in data else parse_input(data, after, t_s))
    (report,) = replay_runs(held, 1)
    assert not report.match
    assert "EStop" in report.difference.expected, report.difference
    assert "reconnect" in report.difference.expected, report.difference
