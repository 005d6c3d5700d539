"""A pass's counters when the telemetry listeners' thread lags (a loaded machine, CI run of
2026-11-29): reports received before the pass's base report, delivered after it, carry older
counters. They used to read as a pen that restarted, and the pen's whole stroke count was added
to the pass (55 strokes for 5 impressions). They are now skipped; a real reboot still counts."""

from __future__ import annotations

import dataclasses

from smpdevice.control import PenController
from smpdevice.sessions.session import _Recorder
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim


def _report():
    with (virtual_sim(seed=2) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        sim.time.wait_until(lambda: pen.telemetry is not None, 5.0)
        return pen.telemetry


def test_reports_older_than_the_base_delivered_late_are_not_counted():
    t = _report()

    def at(seq: int, s: float, strokes: int, impressions: int):
        return dataclasses.replace(t, telemetry_seq=seq, received_at_s=s, strokes=strokes,
                                   impressions=impressions, needle_running=True)

    base = at(100, 10.0, 400, 90)
    recorder = _Recorder()
    recorder.begin(base)
    for late in (at(98, 9.96, 380, 88), at(99, 9.98, 395, 89), base):  # queued before begin
        recorder(late)
    for seq, strokes, impressions in ((101, 404, 91), (102, 409, 92)):
        recorder(at(seq, 10.0 + (seq - 100) * 0.02, strokes, impressions))
    stats = recorder.end()
    assert (stats.strokes, stats.impressions) == (9, 2)
    assert stats.samples == 2  # the late reports' samples are the previous pass's


def test_a_reboot_mid_pass_still_counts_from_zero():
    t = _report()
    base = dataclasses.replace(t, telemetry_seq=100, received_at_s=10.0, strokes=400,
                               impressions=90)
    recorder = _Recorder()
    recorder.begin(base)
    recorder(dataclasses.replace(base, telemetry_seq=101, received_at_s=10.02, strokes=405,
                                 impressions=91))
    # the pen rebooted: its counters and its report numbers start again, received later
    recorder(dataclasses.replace(base, telemetry_seq=3, received_at_s=10.5, strokes=7,
                                 impressions=2))
    stats = recorder.end()
    assert (stats.strokes, stats.impressions) == (5 + 7, 1 + 2)
