"""A pass's figures and its end never depend on the integrator's telemetry listeners (review9a
R06, R07). The session's counter used to be one more listener on the same bounded, drop-oldest
queue: a slow display made it lag and drop reports, so the pass log under-counted and a pass
planned in impressions ran on (3x its dots) until the lagging copy reached its target.

Here an integrator's listener holds the listeners' queue for the whole pass (a frozen UI: the
worst a slow one can do). The pen is on a clock its controller drives (as
`pensim://?clock=virtual`'s): a held listener holds it half a second at most, then it goes at
the wall's pace (docs/simulator.md, "Virtual time"); on the wall clock a loaded machine could
stall the pass past its pen's lease."""

from __future__ import annotations

import threading

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController, State
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.sessions.profiles import PlannedPass
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile

PLANNED = 6


def test_a_frozen_listener_changes_neither_the_pass_end_nor_its_record(tmp_path):
    release = threading.Event()
    frozen: list = []

    def frozen_ui(t) -> None:  # blocks its queue until the test is over
        if t.needle_running:
            frozen.append(t)
            release.wait(60)

    def overran(made_before: int):
        # Old code: the counter never sees the pass; stop it well past the plan, not at 600 s.
        return lambda: pen.telemetry.impressions - made_before > PLANNED + 20

    try:
        with (PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as sim,
              PenController.connect(sim.url, calibration=true_calibration(sim)) as pen,
              PassLog.open(tmp_path / "passlog.sqlite") as log):
            profile = short_profile(1.0, passes=1)
            plan = [PlannedPass(zone=profile.plan[0].zone, impressions=PLANNED)]
            session = TreatmentSession.open(pen, log, profile.model_copy(update={"plan": plan}),
                                            technician="ana", screening=parse_screening(CLEAR))
            pen.add_telemetry_listener(frozen_ui)
            before = pen.telemetry
            [result] = session.play(should_stop=overran(before.impressions))
            pen.wait_for_state(State.ARMED)
            reports = pen.telemetry.telemetry_seq
            pen.pause(0.1)  # reports after the stop: the pen's counters are final
            after = pen.telemetry
            assert after.telemetry_seq > reports and not after.needle_running
            [recorded] = log.passes(session.session_id)
            session.close()
            held = len(frozen) == 1 and not release.is_set()
    finally:
        release.set()
    assert held, "the listener was meant to hold its queue for the whole pass"
    assert result.outcome is PassOutcome.completed, result
    made = after.impressions - before.impressions
    assert PLANNED <= made <= PLANNED + 1  # the stop follows the report that reached the plan
    assert recorded.impressions == made
    # the pass ends on the first report after the stop; the motor's spin-down may add a stroke
    strokes = after.strokes - before.strokes
    assert strokes - 2 <= recorded.strokes <= strokes
    assert recorded.samples > 0
