"""A pass's counters when reports reach them late (a loaded machine, CI run of 2026-11-29):
reports received before the pass's base report, delivered after it, carry older counters. They
used to read as a pen that restarted, and the pen's whole stroke count was added to the pass
(55 strokes for 5 impressions). They are now skipped; a real reboot still counts. The counter
is fed on the reading thread now (review9a R06/R07), so a lagging listener thread no longer
delays it at all; the rule still guards a report read while the pass begins."""

from __future__ import annotations

import dataclasses
import threading
import time

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.pass_counter import PassCounter
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
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
    recorder = PassCounter()
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
    recorder = PassCounter()
    recorder.begin(base)
    recorder(dataclasses.replace(base, telemetry_seq=101, received_at_s=10.02, strokes=405,
                                 impressions=91))
    # the pen rebooted: its counters and its report numbers start again, received later
    recorder(dataclasses.replace(base, telemetry_seq=3, received_at_s=10.5, strokes=7,
                                 impressions=2))
    stats = recorder.end()
    assert (stats.strokes, stats.impressions) == (5 + 7, 1 + 2)


def test_reports_queued_when_the_link_fails_count_in_the_pass(tmp_path):
    """The pen's last reports were read, but their delivery to the listeners still queued,
    when the cable was pulled (a loaded machine: CI, 2026-11-29). The pass used to end at once
    on the lost link and miss them, so its figures depended on a thread's timing and a replay
    of the session found one impression more. The pass counts every report read before its
    end: the session's counter is fed as each report is read, so the listeners' queue, held
    here until the session is over, does not matter. Real time: the held delivery would hold
    a virtual clock."""
    holding, held, release = threading.Event(), threading.Event(), threading.Event()
    seen: list = []

    def hold(t) -> None:  # an integrator's listener that stalls the listeners' queue
        seen.append(t)
        if holding.is_set() and not held.is_set():
            held.set()
            release.wait(60)

    def pull_cable(progress) -> None:
        if progress.impressions < 2 or holding.is_set():
            return
        holding.set()
        assert held.wait(30), "no report was delivered"
        stuck = pen.telemetry.telemetry_seq
        deadline = time.monotonic() + 30
        while pen.telemetry.telemetry_seq < stuck + 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # the pen's next reports, read, queued (its clock goes at the
            # wall's pace while the listeners are held: docs/simulator.md, "Virtual time")
        sim.disconnect()

    try:
        # a pen on the clock its controller drives: never ahead of a host a loaded machine
        # stalls, so the pass is not cut by a lapsed lease in place of the pulled cable
        with (PenSimulator(seed=3, clock=VirtualClock(host_driven=True)) as sim,
              PenController.connect(sim.url, calibration=true_calibration(sim)) as pen,
              PassLog.open(tmp_path / "passlog.sqlite") as log):
            pen.add_telemetry_listener(hold)
            session = TreatmentSession.open(pen, log, short_profile(5.0, passes=1),
                                            technician="ana", screening=parse_screening(CLEAR))
            [result] = session.play(on_progress=pull_cable)
            session.suspend()
            last = pen.telemetry
            still_held = seen[-1] is not last  # the listeners have not seen the last report
    finally:
        release.set()
    assert result.outcome.value == "link_lost", result
    assert still_held, "the listeners' queue was meant to be held past the pass's end"
    # a fresh pen counts from 0: the pass holds everything the pen reported until the loss
    assert (result.stats.strokes, result.stats.impressions) == (last.strokes, last.impressions)
