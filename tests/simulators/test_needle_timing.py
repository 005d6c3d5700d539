"""Impression and stroke counting stay exact when the setpoints change while the needle runs."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from tests.simulators.helpers import make

SPEED_CENTIHZ = 10000  # 100 Hz
TAU_MS = 20  # PenModel.motor_tau_s


def _setpoints(period_us: int, duty_permille: int = 1000) -> m.SetSetpoints:
    return m.SetSetpoints(1000, SPEED_CENTIHZ, duty_permille, period_us)


def test_shortening_the_period_mid_impression_counts_each_new_period_once() -> None:
    sim, host = make()
    host.start_needle(period_us=1_000_000, lease_ms=2000)
    sim.advance(0.960)  # 960 ms into the first 1 s impression
    before = sim.firmware.impressions
    assert host.request(_setpoints(20_000)).TYPE == MsgType.ACK
    sim.advance(0.050)
    # the 960 ms impression is over (it outlasted 20 ms): one begins at the change, then at +20
    # and +40 ms. The old firmware subtracted one period per tick and counted 50.
    assert sim.firmware.impressions - before == 3


def test_lengthening_the_period_extends_the_running_impression() -> None:
    sim, host = make()
    host.start_needle(period_us=20_000, lease_ms=2000)
    sim.advance(0.010)
    before = sim.firmware.impressions
    host.request(_setpoints(100_000))
    sim.advance(0.089)  # the impression begun at 0 ends at 100 ms, not yet
    assert sim.firmware.impressions == before
    sim.advance(0.001)
    assert sim.firmware.impressions == before + 1


def test_a_period_shorter_than_a_tick_counts_every_boundary() -> None:
    sim, host = make()
    sim.model.period_min_ms = 0.25  # a QA model below the 1 ms firmware tick
    host.start_needle(period_us=250, lease_ms=2000)
    start = sim.firmware.impressions
    sim.advance(0.010)
    assert sim.firmware.impressions - start == 40


# (wait before the change in ms, new period in ms, new duty in permille)
_changes = st.lists(
    st.tuples(st.integers(1, 120), st.integers(20, 1000), st.sampled_from([1000, 1000, 500, 50])),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first_period_ms=st.integers(20, 1000), changes=_changes, tail_ms=st.integers(1, 200))
def test_counts_follow_the_periods_for_any_sequence_of_changes(
    first_period_ms: int, changes: list[tuple[int, int, int]], tail_ms: int
) -> None:
    sim, host = make(speed_ripple_pct=0.0, speed_wander_pct=0.0)  # the lag model alone
    fw = sim.firmware
    host.start_needle(period_us=first_period_ms * 1000, lease_ms=2000)
    assert fw.state is S.RUNNING
    start_impressions, start_ms = fw.impressions, fw.now_ms
    events_ms = [start_ms] * start_impressions  # impressions counted, by firmware tick
    min_period_ms, duties = first_period_ms, set()

    def run(ms: int) -> None:
        for _ in range(ms):
            before = fw.impressions
            sim.advance(0.001)
            events_ms.extend([fw.now_ms] * (fw.impressions - before))

    for wait_ms, period_ms, duty in changes:
        run(wait_ms)
        before = fw.impressions
        assert host.request(_setpoints(period_ms * 1000, duty)).TYPE == MsgType.ACK
        events_ms.extend([fw.now_ms] * (fw.impressions - before))
        min_period_ms = min(min_period_ms, period_ms)
        duties.add(duty)
    run(tail_ms)
    assert fw.state is S.RUNNING
    run_ms = fw.now_ms - start_ms

    # Over every interval, at most ceil(interval / shortest period) + 1 impressions begin.
    events = events_ms[start_impressions - 1:]
    for i in range(len(events)):
        for j in range(i, len(events)):
            bound = math.ceil((events[j] - events[i]) / min_period_ms) + 1
            assert j - i + 1 <= bound, (events[i], events[j], j - i + 1, bound)
    # ... and over the whole run too (the first impression began at NEEDLE_START).
    assert fw.impressions - start_impressions + 1 <= math.ceil(run_ms / min_period_ms) + 1

    # Strokes never exceed speed x run time; at 100 % duty they fall short by at most the
    # motor's spin-up (one time constant).
    speed_hz = SPEED_CENTIHZ / 100
    strokes = fw.physics.strokes
    assert strokes <= speed_hz * run_ms / 1000
    if duties <= {1000}:
        assert strokes >= speed_hz * (run_ms - TAU_MS) / 1000 - 1
