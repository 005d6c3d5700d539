"""`--into-sim` of a session resumed on a new connection made before the pen's lease ran out
(review6 R05): the real pen's needle still ran when the link came back, and the new
connection's handshake stopped it, outside both parts' recordings. The part's `/meta` says it
began on an idle pen, so the bridge between parts stops a simulator left running (NEEDLE_STOP,
DISARM; not compared, named in how the part started) and the part's own frames are compared
from its first. Virtual time keeps the reconnect inside the lease, every run."""
from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.replay.into_sim import replay_into_sim
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.virtual_time import after

pytestmark = pytest.mark.virtual_time

LEASE_MS = 2000  # the pen's longest: the reconnect comes well inside it


def _connect(sim) -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=LEASE_MS,
                                 clock=sim.clock)


@pytest.fixture
def reconnected(sim, passlog):
    """Cable pulled mid-pass, plugged back at once, a new connection, the session resumed."""
    first_pen = _connect(sim)
    first = TreatmentSession.open(first_pen, passlog, short_profile(0.4, passes=3),
                                  technician="ana", screening=parse_screening(CLEAR))
    after(sim.clock, 0.6, sim.disconnect)
    first.play()
    first.suspend()  # left open, as a lost pen's session is
    first_pen.close()
    assert [p.outcome for p in passlog.passes(first.session_id)][-1] == "link_lost"
    sim.reconnect()
    second_pen = _connect(sim)
    try:
        assert second_pen.state.value == "idle"  # the handshake found the needle and stopped it
        second = resume_session(second_pen, passlog, first.session_id, technician="bo")
        second.play()
        second.close()
    finally:
        second_pen.close()
    return passlog, first.session_id


def test_into_sim_stops_the_needle_the_reconnect_stopped_and_matches(reconnected):
    passlog, session_id = reconnected
    report = replay_into_sim(passlog, session_id)
    assert report.match, (report.difference, [r.started for r in report.part_results])
    started = report.part_results[1].started
    assert any("NEEDLE_STOP and DISARM sent (the pen was left RUNNING" in s for s in started), \
        started
    assert any("a new connection: its handshake replayed" in s for s in started), started
    assert report.part_results[1].host_frames > 0  # the part's own frames were compared


def test_the_plain_replay_of_that_session_matches_too(reconnected):
    passlog, session_id = reconnected
    report = replay_session(passlog, session_id)
    assert report.match, (report.difference, report.notes)
    assert report.parts == 2


def test_a_pen_that_will_not_stop_is_still_a_difference(reconnected, monkeypatch):
    """The bridge stops the needle; it never assumes it stopped: a simulator that stays
    RUNNING after the stop is named at the part's start."""
    from smpdevice.replay import into_sim

    monkeypatch.setattr(into_sim, "NeedleStop", into_sim.ClearFaults)  # not a stop at all
    monkeypatch.setattr(into_sim, "Disarm", into_sim.ClearFaults)
    passlog, session_id = reconnected
    report = replay_into_sim(passlog, session_id)
    assert not report.match
    assert report.difference.what == "pen at the part's start", report.difference
    assert "RUNNING" in report.difference.got and "after the stop" in report.difference.got
