"""`smp calibrate --service URL`, guided: the station's prompts, over a real service and pen.

The technician is played by `LiveInput`: each answer is typed when click asks for it, reading
the simulated pen's gauge at that moment, as a person looking at a dial gauge would.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control import State
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError

from .conftest import connect, measured_calibration, run


@pytest.fixture
def sim(vsim):
    """The pen on virtual time (its clock driven by the service's controller): moves, spins
    and gauge readings follow the pen's own time, as fast as the computer computes them; the
    clients' leases stay on wall time, as ever."""
    return vsim


class LiveInput(io.RawIOBase):
    """stdin whose lines are produced one at a time, when the program reads them."""

    def __init__(self, answers: list[str | Callable[[], str]]) -> None:
        self.answers = list(answers)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if len(buffer) == 0 or not self.answers:
            return 0
        answer = self.answers.pop(0)
        data = ((answer() if callable(answer) else answer) + "\n").encode()
        buffer[: len(data)] = data
        return len(data)


def smp(args: list[str], stdin: LiveInput | None = None):
    return CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)


def test_guided_calibration_through_the_service_saves_and_installs(service, sim, data_dir):
    def gauge() -> str:
        return f"{sim.gauge.read_mm():.3f}"

    before = service.pen.calibration
    stdin = LiveInput(["abc", *[gauge] * 40])  # a typo first: refused and asked again
    result = smp(["calibrate", "--service", service.url, "-t", "ana", "--spin-seconds", "0.2"],
                 stdin)
    out = result.output
    assert result.exit_code == 0, out
    assert f"Calibrating pen {sim.serial}" in out and "through the service at" in out
    assert "Step 1, zero" in out and "Depth point 1 of 6: the actuator is at" in out
    assert "refused: 'abc' is not a number" in out  # the station's own entry checks
    assert "Step 3, speed" in out and "Result: PASS" in out
    assert "Saved to the calibration store of the service" in out
    cal = service.pen.calibration
    assert cal is not None and cal is not before and cal.technician == "ana"
    assert cal.offset_mm == pytest.approx(-sim.model.offset_mm, abs=0.02)
    assert cal.gain == pytest.approx(sim.model.gain, abs=0.01)
    assert cal.simulated is True and cal.speed_error_pct is not None
    stored = CalibrationStore(readonly=True).latest(sim.serial)
    assert stored is not None and stored.calibration_id == cal.calibration_id
    assert service.pen.state is State.IDLE
    assert service.server.service.lease.holder() is None  # released at the end


def test_aborting_a_guided_calibration_through_the_service_saves_nothing(service, sim,
                                                                         data_dir):
    before = service.pen.calibration
    stdin = LiveInput([lambda: f"{sim.gauge.read_mm():.3f}"] * 2 + ["q"])
    result = smp(["calibrate", "--service", service.url, "-t", "ana"], stdin)
    assert result.exit_code == 1, result.output
    assert "ABORTED by the technician; nothing was saved" in result.output
    assert service.pen.calibration is before
    assert service.pen.state is State.IDLE
    assert not (data_dir / "calibrations.sqlite").exists() or \
        CalibrationStore(readonly=True).latest(sim.serial) is None


def test_options_that_belong_to_the_station_are_refused_with_service(service):
    for extra, word in ((["--db", "x.sqlite"], "--db"), (["--verify-only"], "--verify-only")):
        result = smp(["calibrate", "--service", service.url, *extra])
        assert result.exit_code != 0 and word in result.output, result.output
    assert service.pen.state is State.IDLE


def _valid(sim, **changes) -> dict:
    cal = Calibration.linear(pen_serial=sim.serial, technician="t",
                             offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
                             simulated=True)
    return {**cal.model_dump(mode="json"), **changes}


def test_the_service_refuses_a_calibration_it_cannot_vouch_for(service, sim):
    """Only what belongs to this pen, is fresh, bounded and checked is saved or installed."""
    now = datetime.now(UTC)
    bad = [
        _valid(sim, pen_serial="SMP-OTHERPEN"),
        _valid(sim, simulated=False),
        _valid(sim, created_at=(now - timedelta(hours=2)).isoformat(),
               expires_at=(now + timedelta(days=10)).isoformat()),
        _valid(sim, expires_at=(now + timedelta(days=4000)).isoformat()),
        _valid(sim, gain=50.0),
        _valid(sim, offset_mm=float("1e308")),
        _valid(sim, created_at="yesterday"),
        _valid(sim, expires_at=None),
    ]

    async def main() -> tuple[ServiceError, list[ServiceError], ServiceError, dict]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        with pytest.raises(ServiceError) as idle:  # not calibrating: nothing to save into
            await tech.call("calibration.save", calibration=_valid(sim))
        await tech.call("calibration.begin")
        refused = []
        for data in bad:
            with pytest.raises(ServiceError) as exc:
                await tech.call("calibration.save", calibration=data)
            refused.append(exc.value)
        with pytest.raises(ServiceError) as unknown:  # never installs what the store lacks
            await tech.call("calibration.end", calibration_id="notsaved1234")
        with pytest.raises(ServiceError) as unmeasured:  # well-formed, but no evidence at all
            await tech.call("calibration.save", calibration=_valid(sim))
        refused.append(unmeasured.value)
        data = (await measured_calibration(tech, sim)).model_dump(mode="json")
        good = await tech.call("calibration.save", calibration=data)
        with pytest.raises(ServiceError) as again:  # a stored record is never replaced
            await tech.call("calibration.save", calibration=data)
        refused.append(again.value)
        ended = await tech.call("calibration.end", calibration_id=good["calibration_id"])
        await tech.release()
        await tech.close()
        return idle.value, refused, unknown.value, ended

    idle, refused, unknown, ended = run(main())
    assert "calibration.begin first" in str(idle)
    assert "SMP-OTHERPEN" in str(refused[0]) and "simulated" in str(refused[1])
    assert "created_at" in str(refused[2]) and "expires_at" in str(refused[3])
    assert "gain" in str(refused[4]) and "offset_mm" in str(refused[5])
    assert "created_at" in str(refused[6]) and "expires_at" in str(refused[7])
    assert "at least 3 points" in str(refused[-2]) and "already has it" in str(refused[-1])
    assert all(e.code in (-32000, -32602) for e in refused)  # refusals, never internal errors
    assert "only the calibration calibration.save answered in this run" in str(unknown)
    assert service.pen.calibration.calibration_id == ended["calibration_id"]
    assert service.pen.state is State.IDLE


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20), lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(Calibration.model_fields)), value=JSON)
def test_any_field_value_is_saved_checked_or_refused_by_name(field, value):
    """Whatever a client puts in one field, the service answers with a calibration that
    passes every check or a CalibrationError naming the field: never anything else."""
    from types import SimpleNamespace

    from smpdevice.control.calibration import CalibrationError
    from smpdevice.service.calibrating import check_submitted

    pen = SimpleNamespace(serial="SMP-TESTPEN1", simulated=True)
    base = Calibration.linear(pen_serial=pen.serial, technician="t", offset_mm=-0.4, gain=0.95,
                              simulated=True).model_dump(mode="json")
    try:
        cal = check_submitted(SimpleNamespace(pen=pen), {**base, field: value})
    except CalibrationError as exc:
        assert field in str(exc), (field, value, str(exc))
        return
    assert cal.pen_serial == pen.serial and cal.simulated is True
    assert 0.5 <= cal.gain <= 2.0
