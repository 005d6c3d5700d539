"""Review REVLAT (session 13): the "setpoints" log line, now built only when INFO is enabled,
still reaches the detail log (smp.log) whole, as the command line configures it (`--log-level
info`, and the default warning: the detail log takes info and up either way), and stderr at
info; a user's logger without `is_enabled_for` still gets the call."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from smpdevice import logs
from smpdevice.control import PenController
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.55, "speed_hz": 110.0, "duty_pct": 45.0, "period_ms": 120.0}


def _setpoints_events(path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event.get("event") == "setpoints"]


@pytest.mark.parametrize("level", ["info", "warning"])
def test_the_setpoints_event_is_written_whole_to_the_detail_log(level, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    logs.configure(level, detail_log=True)
    try:
        with virtual_sim(seed=13) as sim, PenController.connect(
                sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
            pen.set_zone("crown")
            pen.set_setpoints(**SP)
    finally:
        detail = logs._detail
        logs.configure()  # closes the detail log's file
    assert detail is not None and detail.path is not None
    events = _setpoints_events(detail.path)
    assert len(events) == 1
    event = events[0]
    assert {k: event[k] for k in SP} == SP
    assert event["zone"] == "crown" and event["pen_serial"] == sim.serial
    assert event["level"] == "info" and "timestamp" in event
    err = capsys.readouterr().err
    assert ("info: setpoints" in err) == (level == "info")


def test_a_logger_without_is_enabled_for_still_gets_the_call():
    calls: list = []

    class Plain:  # a user's own logger: bind and the levels, nothing else
        def bind(self, **_kw):
            return self

        def info(self, event, **kw):
            calls.append((event, kw))

        warning = debug = error = exception = info

    with virtual_sim(seed=14) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen._log = Plain()
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
    assert ("setpoints", SP) in calls


def test_capture_logs_sees_the_setpoints_event_from_a_programs_own_debug_logger():
    """A program that configured structlog itself (its filtering logger at debug), and
    structlog's test capture: the event is there, with its four fields."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        logger_factory=structlog.ReturnLoggerFactory())
    with virtual_sim(seed=15) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        with structlog.testing.capture_logs() as captured:
            pen.set_setpoints(**SP)
    events = [e for e in captured if e["event"] == "setpoints"]
    assert len(events) == 1 and {k: events[0][k] for k in SP} == SP
