"""Review 17 (b17c): docs/simulator.md, "Replay it into this controller": "sequence numbers,
lease renewals and retransmissions are not compared", and an E-stop request is an input the
replay applies again. A pen that confirms an E-stop 50 ms late (`delay_type=ESTOP:0.05`, a
documented fault) makes the controller re-send ESTOP (same seq) after its NEEDLE_STOP; the
replay pen takes only a re-send of the *last* frame for a retransmission, so the replay names
the re-sent ESTOP as a new command: "expected no more commands (the recording ends here); got
EStop {}". Which order the live run recorded (NEEDLE_STOP before or after the first re-send)
depends on its threads: one recording in 4 to 15 replays so, so the test
records 40 (about 3 s) and each must replay as a match."""

from __future__ import annotations

import threading

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.virtual_time import TimeDriver, after

pytestmark = pytest.mark.virtual_time


def _record_late_confirmed_estop(tmp_path) -> tuple[PassLog, str]:
    clock = VirtualClock()
    with PenSimulator(seed=7, clock=clock, link_faults="delay_type=ESTOP:0.05") as sim, \
            TimeDriver(clock) as driver:
        sim.advance(0.06)  # booted
        pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                    clock=clock)
        try:
            log = PassLog.open(tmp_path / "passlog.sqlite")
            session = TreatmentSession.open(pen, log, short_profile(seconds=0.6, passes=3),
                                            technician="ana", screening=parse_screening(CLEAR))
            confirmed = threading.Event()

            def press() -> None:
                pen.estop()  # confirmed: the pen answers 50 ms late, not never
                confirmed.set()

            after(clock, 0.5, press, in_thread=True)
            session.play()
            driver.wait_until(confirmed.is_set, 5.0, "the E-stop's confirmation")
            session.close()
            return log, session.session_id
        finally:
            pen.close()


RECORDINGS = 40  # in CHUNKS cases of their own, which pytest-xdist spreads (one sweep of 40
CHUNKS = 4       # was 37 s on a loaded CI run, the pass's critical path)


def _replayed(tmp_path, n: int):
    run = tmp_path / f"run{n}"
    run.mkdir()
    log, session_id = _record_late_confirmed_estop(run)
    try:
        outcomes = [p.outcome for p in log.passes(session_id)]
        return outcomes, replay_session(log, session_id)
    finally:
        log.close()


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_a_late_confirmed_estop_replays_as_a_match(tmp_path, chunk):
    for n in range(chunk, RECORDINGS, CHUNKS):
        outcomes, report = _replayed(tmp_path, n)
        assert outcomes[-1] == "estop", outcomes
        assert report.match, (n, report.difference, report.notes)
