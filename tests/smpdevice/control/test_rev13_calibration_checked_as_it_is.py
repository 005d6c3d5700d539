"""Review REVLAT (session 13): the setpoint path's cached calibration check
(`RequestsMixin._valid_calibration`) against the real simulator over real bytes, on virtual
time. Every refusal must be HEAD's (`require_calibration` at every setpoint), word for word,
and a refused setpoint must never reach the pen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smpdevice.control import PenController
from smpdevice.control import calibration as calibration_module
from smpdevice.control.calibration import (
    FUTURE_SLACK,
    Calibration,
    CalibrationError,
    require_calibration,
)
from smpdevice.outcomes import calibrate_command
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

# expires at midnight UTC exactly: the day rolls over at the expiry
CREATED = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
EXPIRES = CREATED + timedelta(days=30)
ONE_US = timedelta(microseconds=1)
SP = {"depth_mm": 0.6, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _calibration(sim, *, created=CREATED, days=30, serial=None) -> Calibration:
    return Calibration.linear(pen_serial=serial or sim.serial, technician="revlat",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
                              created_at=created, validity_days=days)


class Today:
    """`calibration.today_utc`, the one wall clock a calibration is judged by, moved on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC)
        monkeypatch.setattr(calibration_module, "today_utc", lambda: self.now)


def _outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except CalibrationError as exc:
        return ("refused", str(exc))


def _sent_depth_um(sim) -> int | None:
    """The depth command the pen holds (None: no setpoints since it booted)."""
    fw = sim.firmware
    return fw.depth_cmd_um if fw.has_setpoints else None


@pytest.fixture
def today(monkeypatch):
    return Today(monkeypatch)


def test_every_date_edge_is_judged_at_each_setpoint_as_head_does(today):
    with virtual_sim(seed=3) as sim:
        cal = _calibration(sim)
        today.now = CREATED + timedelta(days=10)
        with PenController.connect(sim.url, clock=sim.clock, calibration=cal) as pen:
            pen.set_zone("crown")
            hint = calibrate_command(pen.port_url)
            expired = (f"the calibration of pen {sim.serial} expired on "
                       f"{EXPIRES:%Y-%m-%d %H:%M} UTC. Recalibrate: {hint}")
            depth = 0.4
            for now in (CREATED + timedelta(days=10), EXPIRES - ONE_US, EXPIRES,
                        EXPIRES + ONE_US, EXPIRES - ONE_US, CREATED - FUTURE_SLACK,
                        CREATED - FUTURE_SLACK - ONE_US, CREATED - FUTURE_SLACK,
                        EXPIRES + timedelta(days=400), CREATED + timedelta(days=1)):
                today.now = now
                depth = round(depth + 0.01, 3)
                before = _sent_depth_um(sim)
                head = _outcome(require_calibration, cal, sim.serial, simulated_pen=True,
                                port=pen.port_url, now=now)
                got = _outcome(pen.set_setpoints, **{**SP, "depth_mm": depth})
                if head[0] == "ok":
                    assert got[0] == "ok", (now, got)
                    assert _sent_depth_um(sim) != before, now  # it reached the pen
                else:
                    assert got == head, now  # the same words
                    assert _sent_depth_um(sim) == before, now  # nothing was sent
                if now == EXPIRES:
                    assert got == ("refused", expired)
                if now == CREATED - FUTURE_SLACK - ONE_US:
                    assert got[0] == "refused" and "after this computer's clock" in got[1]


def test_a_replaced_calibration_is_judged_by_its_own_expiry(today):
    with virtual_sim(seed=4) as sim:
        today.now = CREATED + timedelta(days=5)
        long = _calibration(sim, days=30)
        with PenController.connect(sim.url, clock=sim.clock, calibration=long) as pen:
            pen.set_zone("crown")
            pen.set_setpoints(**SP)  # the long one is found valid, and kept as such
            short = _calibration(sim, days=6)
            pen.set_calibration(short)  # valid now: accepted
            pen.set_zone("crown")
            today.now = CREATED + timedelta(days=7)  # past the short one, inside the long one
            with pytest.raises(CalibrationError) as refused:
                pen.set_setpoints(**SP)
            assert str(refused.value) == (
                f"the calibration of pen {sim.serial} expired on "
                f"{CREATED + timedelta(days=6):%Y-%m-%d %H:%M} UTC. Recalibrate: "
                f"{calibrate_command(pen.port_url)}")


def test_another_pen_behind_the_same_port_is_refused_the_first_pens_calibration(today):
    """close(), another pen answers on the same port name, open(): the controller keeps the
    first pen's calibration (found valid, cached), which must be refused for the second."""
    today.now = CREATED + timedelta(days=5)
    with virtual_sim(seed=11, name="revlat-swap") as first:
        cal = _calibration(first)
        pen = PenController(first.url, clock=first.clock, calibration=cal)
        pen.open()
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        pen.close()
    with virtual_sim(seed=12, name="revlat-swap") as second:
        assert second.serial != first.serial
        pen.clock = second.clock  # the caller's clock, as `clock=` gave it
        pen._bind_clock(second.clock)
        try:
            pen.open()
            pen.set_zone("crown")
            with pytest.raises(CalibrationError) as refused:
                pen.set_setpoints(**SP)
            assert str(refused.value) == (
                f"calibration {cal.calibration_id} belongs to pen {first.serial}, but pen "
                f"{second.serial} is connected. Calibrate this pen: "
                f"{calibrate_command(pen.port_url)}")
            assert _sent_depth_um(second) is None  # nothing reached the second pen
        finally:
            pen.close()


def test_a_calibration_altered_in_place_is_judged_as_it_is_now(today):
    """A frozen model can still be altered in place (object.__setattr__, its __dict__): HEAD
    judged the calibration as it is at every setpoint; the cache judges the object's identity."""
    today.now = CREATED + timedelta(days=5)
    with virtual_sim(seed=6) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        cal = pen.calibration
        object.__setattr__(cal, "pen_serial", "OTHERPEN")
        head = _outcome(require_calibration, cal, sim.serial, simulated_pen=True,
                        port=pen.port_url, now=today.now)
        assert head[0] == "refused"
        before = _sent_depth_um(sim)
        got = _outcome(pen.set_setpoints, **{**SP, "depth_mm": 0.7})
        assert got == head
        assert _sent_depth_um(sim) == before


REVOKED: set[str] = set()  # calibration ids a site's own register has revoked


class SiteCalibration(Calibration):
    """A site's calibration: its own `check_for` also refuses a revoked one (Calibration and
    check_for are public; require_calibration asks check_for, HEAD did at every setpoint)."""

    def check_for(self, pen_serial, now=None, *, port=None, again=None) -> None:
        if self.calibration_id in REVOKED:
            raise CalibrationError(f"calibration {self.calibration_id} was revoked")
        super().check_for(pen_serial, now, port=port, again=again)


def test_a_calibrations_own_check_is_asked_at_every_setpoint(today):
    today.now = CREATED + timedelta(days=5)
    with virtual_sim(seed=16) as sim:
        cal = SiteCalibration(**_calibration(sim).model_dump())
        with PenController.connect(sim.url, clock=sim.clock, calibration=cal) as pen:
            pen.set_zone("crown")
            pen.set_setpoints(**SP)
            REVOKED.add(cal.calibration_id)
            try:
                before = _sent_depth_um(sim)
                got = _outcome(pen.set_setpoints, **{**SP, "depth_mm": 0.7})
                assert got == ("refused", f"calibration {cal.calibration_id} was revoked")
                assert _sent_depth_um(sim) == before
            finally:
                REVOKED.discard(cal.calibration_id)
