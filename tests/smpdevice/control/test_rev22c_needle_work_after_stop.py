"""Session 22 (review C): a needle-work line holds the pen's counters after the last stop.

`note_needle_work` wrote the pen's last report, whatever its age. A speed check begun right
after a bare pass was stopped between two reports (slow telemetry) took the report from
BEFORE that stop, the needle running: the line's counters were short of the pass's last dots,
so a resume placing needle work by the pen's counters (`within`) saw it earlier than it was.
Virtual time, the real simulator, whose firmware notes its counters as each NEEDLE_START
arrives.
"""

from __future__ import annotations

import json

import pytest

from firmware_protocol.messages import MsgType
from simulators.firmware import PenFirmware
from smpdevice.control import PenController
from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from tests.smpdevice.conftest import run_needle, true_calibration

pytestmark = pytest.mark.virtual_time


def test_a_speed_check_right_after_a_stop_notes_the_counters_after_it(sim, monkeypatch,
                                                                      tmp_path):
    at_start: list[tuple[int, int]] = []  # (impressions, strokes) as each NEEDLE_START lands
    original = PenFirmware._HANDLERS[MsgType.NEEDLE_START]

    def noting(fw: PenFirmware, msg) -> object:
        at_start.append((fw.impressions, fw.physics.strokes))
        return original(fw, msg)

    monkeypatch.setitem(PenFirmware._HANDLERS, MsgType.NEEDLE_START, noting)
    # reports 500 ms apart: the stop, disarm and the speed check's start fit between two
    with PenController.connect(sim.url, calibration=true_calibration(sim), telemetry_hz=2,
                               clock=sim.clock) as pen:
        pen.needle_work_dir = tmp_path
        run_needle(pen)  # a bare start: noted too
        before = pen.telemetry
        assert pen._wait_news(lambda: pen.telemetry is not before, 1.0)
        report = pen.telemetry
        pen.pause(0.3)  # two or three impressions (one per 120 ms) no report shows
        pen.stop_needle()
        pen.disarm()
        assert pen.telemetry is report  # nothing reported since: the case at hand
        pen.begin_calibration()
        pen.calibration_spin(sim.model.speed_min_hz, duration_s=1.0)
        pen.end_calibration()
    lines = [json.loads(line) for line in (tmp_path / NEEDLE_WORK_NAME).read_text().splitlines()]
    assert [line["what"] for line in lines] == ["a needle start outside a session",
                                                "a calibration's speed check"]
    assert len(at_start) == 2
    impressions, strokes = at_start[1]  # the needle stood still from the stop to here
    counters = lines[1]["counters"]
    assert counters is not None
    assert impressions > report.impressions  # the stop came after dots the report missed
    assert (counters["impressions"], counters["strokes"]) == (impressions, strokes), \
        (counters, at_start, report)
