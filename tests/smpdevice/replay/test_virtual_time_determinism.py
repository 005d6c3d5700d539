"""Review 11 (C): docs/simulator.md 'Virtual time': 'The same seed and profile play the same passes,
outcomes and impressions every time; strokes may differ by a few, and a pass's needle time by
a few hundredths of a second'; impressions are 'one when the needle starts, one more per whole
pulse period it runs'."""

from __future__ import annotations

import math

from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import record_session, short_profile


def _play(tmp_path, n: int):
    pen = PenController.connect("pensim://?seed=5&clock=virtual", lease_ms=200)
    try:
        pen.set_calibration(true_calibration(pen.link.port.simulator))
        with PassLog.open(tmp_path / f"log{n}.sqlite") as log:
            rec = record_session(pen, log, short_profile(seconds=0.5, passes=4))
            return [(p.zone, p.outcome, p.impressions, p.strokes, p.period_ms, p.started_at,
                     p.ended_at) for p in log.passes(rec.session_id)]
    finally:
        pen.close()


def test_the_same_seed_and_profile_play_the_same_passes(tmp_path):
    first, second = _play(tmp_path, 1), _play(tmp_path, 2)
    assert [p[:3] for p in first] == [p[:3] for p in second]
    for a, b in zip(first, second, strict=True):
        assert abs(a[3] - b[3]) <= 5, (a, b)
        # one impression at the start, one more per whole period run (0.5 s of needle)
        assert a[2] == 1 + math.floor(0.5 / (a[4] / 1000) + 1e-9) or \
            abs(a[2] - (1 + 0.5 / (a[4] / 1000))) <= 1, a
