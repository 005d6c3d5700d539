"""Review 19 (safety): a session's hairline pass never runs in another zone's envelope.

docs/safety.md, "Too deep": every setpoint is checked against the active zone (0.9 mm in the
hairline is refused). Between a session's `set_zone(planned.zone)`/arm/`begin_pass` and its
`start_needle`, another thread (a UI's zone selector, a second client of one `smp serve`)
selected the crown: the pass started in it, a depth knob ran the needle at 0.74 mm, and the
pass log recorded a completed *hairline* pass (hairline ceiling 0.55 mm). Now the start is
refused at its turn: a needle never starts in a zone other than the one its pass was set up
(and recorded) for. Virtual time, real simulator, real pass log."""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import PenController, State
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def test_a_hairline_pass_never_runs_in_a_zone_swapped_in_after_its_record(tmp_path):
    profile = short_profile(1.0)
    profile = profile.model_copy(update={"plan": [p for p in profile.plan
                                                  if p.zone == "hairline"][:1]})
    seen: list[str] = []
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        ceiling_mm = pen.zones["hairline"].dermal_ceiling_mm
        session = TreatmentSession.open(pen, log, profile, technician="ana",
                                        screening=parse_screening(CLEAR))
        begin_pass = log.begin_pass

        def begin_then_swap(*args, **kwargs):
            pass_id = begin_pass(*args, **kwargs)
            pen.set_zone("crown")  # another actor, the hairline pass about to start
            seen.append(f"swapped to {pen.zone_name}")
            return pass_id

        log.begin_pass = begin_then_swap  # type: ignore[method-assign]

        def depth_knob() -> None:
            sim.time.wait_until(lambda: pen.state is State.RUNNING or played.is_set(), 5,
                                "the needle running or the pass over")
            if played.is_set():
                return
            seen.append(f"running in {pen.zone_name}")
            try:
                pen.set_setpoints(depth_mm=0.74, speed_hz=80, duty_pct=35, period_ms=120)
                seen.append("0.74 mm taken")
            except SmpError as exc:
                seen.append(f"0.74 mm refused: {exc}")

        played = threading.Event()
        knob = threading.Thread(target=depth_knob)
        knob.start()
        try:
            session.play()
        finally:
            played.set()
        knob.join(30)
        recorded = log.passes(session.session_id)[0]
        result = session.results[0]
    assert seen == ["swapped to crown"], seen  # the needle never ran, in no zone
    assert recorded.zone == "hairline" and recorded.outcome != "completed", recorded
    assert recorded.impressions == 0
    assert recorded.depth_max_mm is None or recorded.depth_max_mm <= ceiling_mm + 0.01
    assert "'crown'" in result.detail and "'hairline'" in result.detail, result.detail
