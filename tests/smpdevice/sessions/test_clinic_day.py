"""An eight-hour clinic day on virtual time: the real PenController and TreatmentSession, many
sessions, every pass in a real pass log, and memory that stays flat (issue 13, item 8).

Slow (`-m slow`): the simulated firmware ticks every virtual millisecond, so the day costs
minutes of CPU. `SMP_SOAK_HOURS` shortens it (e.g. 0.25) for a quick look.
"""

from __future__ import annotations

import gc
import os
import tracemalloc

import pytest

from firmware_protocol.codes import Fault
from smpdevice.control.controller import PenController
from smpdevice.control.states import State
from smpdevice.passlog import PassLog
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

HOURS = float(os.environ.get("SMP_SOAK_HOURS", "8"))
PASS_S = 90.0  # needle time of each pass (under every zone's pass-time limit)
BREAK_S = 20 * 60.0  # between clients (a shortened day: an eighth of it)
GROWTH_LIMIT_B = 1_000_000  # traced Python memory, end of day vs after the first session


@pytest.mark.slow
def test_an_eight_hour_clinic_day_keeps_memory_flat(tmp_path):
    from smpdevice.sessions.screening import parse_screening

    day_s = HOURS * 3600
    break_s = min(BREAK_S, day_s / 8)
    with virtual_sim(seed=71, step_s=0.02) as sim:  # 20 ms steps: telemetry runs at 10 Hz
        driver = sim.time
        with PassLog.open(tmp_path / "passlog.sqlite") as passlog, \
                PenController.connect(sim.url, calibration=true_calibration(sim),
                                      lease_ms=1000, telemetry_hz=10, clock=sim.clock) as pen:
            start_s = sim.clock.now()
            profile = short_profile(PASS_S, passes=4)
            sessions, passes, samples = 0, 0, []
            while sim.clock.now() - start_s + 4 * PASS_S + 60 < day_s:
                session = TreatmentSession.open(pen, passlog, profile, technician="ana",
                                                screening=parse_screening(CLEAR))
                results = session.play()
                session.close()
                sessions += 1
                passes += len(results)
                assert [r.outcome.value for r in results] == ["completed"] * 4
                del session, results
                gc.collect()
                if sessions == 1:
                    tracemalloc.start()
                samples.append(tracemalloc.get_traced_memory()[0])
                driver.sleep(min(break_s, max(0.0, day_s - (sim.clock.now() - start_s))))
            hours = (sim.clock.now() - start_s) / 3600
            gc.collect()
            end_b = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            assert pen.state is State.IDLE
            assert not Fault(sim.firmware.faults)
            logged = len(passlog.passes())
            assert passlog.verify() is None
    assert hours >= HOURS * 0.95
    assert sessions >= max(2, int(HOURS * 2))  # 8 h: about 18 clients
    assert logged == passes
    assert end_b - samples[0] < GROWTH_LIMIT_B, f"memory grew: {samples} -> {end_b} bytes"
