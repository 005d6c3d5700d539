"""Review 3, R01 (safety): a technician-role client cannot save a calibration it made up.

`calibration.save` re-checks a submitted calibration as the station's save does (refit from its
points, residuals, depth accuracy, puncture rates) against the moves and spins the service saw
in this run, so a forged one is refused and never becomes the store's latest for the pen.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators import PenSimulator, VirtualClock
from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError

from .conftest import connect, measured_calibration, run


@pytest.fixture
def sim() -> Iterator[PenSimulator]:
    """The service's pen on virtual time, driven by its controller: the spins' puncture and
    encoder counts are the model's, never a starved real-time simulator's (on loaded cores the
    honest run was refused for an encoder error it did not have)."""
    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as s:
        yield s


def _forged(sim, **extra) -> Calibration:
    return Calibration.linear(pen_serial=sim.serial, technician="ana",
                              offset_mm=-sim.model.offset_mm + 1.5, gain=sim.model.gain,
                              simulated=True, **extra)


async def _save_then_end(service, send) -> ServiceError | None:
    """begin, then `send(tech)` -> a calibration to save and install; the refusal if any."""
    tech = await connect(service, Role.TECHNICIAN)
    await tech.drive(lease_ms=2000)
    await tech.call("calibration.begin")
    try:
        cal = await send(tech)
        saved = await tech.call("calibration.save", calibration=cal.model_dump(mode="json"))
        await tech.call("calibration.end", calibration_id=saved["calibration_id"])
        return None
    except ServiceError as exc:
        await tech.call("calibration.end")
        return exc
    finally:
        await tech.release()
        await tech.close()


def _not_installed_nor_latest(service, sim, cal: Calibration) -> None:
    assert service.pen.calibration.calibration_id != cal.calibration_id
    latest = CalibrationStore(readonly=True).latest(sim.serial)
    assert latest is None or latest.calibration_id != cal.calibration_id


def test_a_made_up_calibration_without_evidence_is_refused(service, sim):
    forged = _forged(sim)  # no points, no residuals, no depth checks

    async def send(tech):
        return forged

    refused = run(_save_then_end(service, send))
    assert refused is not None and "at least 3 points" in str(refused)
    _not_installed_nor_latest(service, sim, forged)


def test_a_fit_that_contradicts_its_own_points_is_refused(service, sim):
    off, gain = -sim.model.offset_mm, sim.model.gain
    pts = [(a, off + gain * a) for a in (0.5, 1.0, 1.5, 2.0)]
    forged = Calibration.linear(pen_serial=sim.serial, technician="ana", offset_mm=off + 0.5,
                                gain=gain, simulated=True, points=pts, residuals_mm=[0.0] * 4,
                                depth_checks=[(d, d + 0.5) for d in (0.6, 0.9, 1.2)])

    async def send(tech):
        return forged

    refused = run(_save_then_end(service, send))
    assert refused is not None and "calibration.offset_mm" in str(refused)
    _not_installed_nor_latest(service, sim, forged)


def test_consistent_numbers_the_pen_never_produced_are_refused(service, sim):
    """A perfect-looking fit, depth checks and rates, but not measured in this run."""
    off, gain = -sim.model.offset_mm, sim.model.gain
    pts = [(a, off + gain * a) for a in (0.6, 0.9, 1.2, 1.5, 1.8, 2.1)]
    forged = _forged(sim, points=pts, residuals_mm=[0.0] * 6,
                     depth_checks=[(d, d) for d in (0.5, 1.0, 1.5)])
    forged = Calibration.model_validate({**forged.model_dump(), "offset_mm": off})

    async def send(tech):
        return forged

    refused = run(_save_then_end(service, send))
    assert refused is not None and "was not moved there in this calibration run" in str(refused)
    _not_installed_nor_latest(service, sim, forged)


def test_rates_the_service_did_not_count_are_refused(service, sim):
    async def send(tech):
        honest = await measured_calibration(tech, sim)
        rates = [(s, m * 1.02) for s, m in honest.rate_checks]  # 2 %: inside the bound
        return Calibration.model_validate({**honest.model_dump(), "rate_checks": rates})

    refused = run(_save_then_end(service, send))
    assert refused is not None and "no calibration.spin of this run" in str(refused)


def test_a_measured_calibration_is_installed_with_the_connections_technician(service, sim):
    """The positive control: an honest run passes; the payload's technician is not trusted."""
    async def main():
        tech = await connect(service, Role.TECHNICIAN, name="bea")
        await tech.drive(lease_ms=2000)
        await tech.call("calibration.begin")
        cal = await measured_calibration(tech, sim, technician="somebody else")
        saved = await tech.call("calibration.save", calibration=cal.model_dump(mode="json"))
        await tech.call("calibration.end", calibration_id=saved["calibration_id"])
        await tech.release()
        await tech.close()
        return cal

    cal = run(main())
    installed = service.pen.calibration
    assert installed.calibration_id == cal.calibration_id and installed.technician == "bea"
    assert CalibrationStore(readonly=True).latest(sim.serial).technician == "bea"
