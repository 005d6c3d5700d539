"""Review 16 (seen beside the calibration finding): a service built with
`ServiceOptions(data_dir=X)` loaded its pen's calibration from `$SMP_DATA_DIR` (the default data
directory), not from X: an in-process service drove the needle with another station's
calibration. It now reads X's calibrations only (docs/technicians.md, "See the records")."""

from __future__ import annotations

import pytest

from simulators import PenSimulator
from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import fit_points


def _calibration(sim: PenSimulator, who: str, off_mm: float = 0.0) -> Calibration:
    offset_mm = -sim.model.offset_mm + off_mm
    return Calibration.linear(pen_serial=sim.serial, technician=who, offset_mm=offset_mm,
                              gain=sim.model.gain, simulated=True,
                              **fit_points(offset_mm, sim.model.gain))


def _serve(sim: PenSimulator, data_dir) -> ServiceHandle:
    return ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                        unix_socket=False, lease_ms=1000))


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    default, own = tmp_path / "default", tmp_path / "own"
    for path in (default, own):
        path.mkdir(mode=0o700)
    monkeypatch.setenv("SMP_DATA_DIR", str(default))
    return default, own


def test_a_service_uses_its_own_data_directory_s_calibration(dirs):
    default, own = dirs
    with PenSimulator(seed=5) as sim:
        CalibrationStore(default / CALIBRATIONS_NAME).save(_calibration(sim, "elsewhere", 0.4))
        mine = _calibration(sim, "here")
        CalibrationStore(own / CALIBRATIONS_NAME).save(mine)
        with _serve(sim, own) as handle:
            assert handle.pen.calibration is not None
            assert handle.pen.calibration.calibration_id == mine.calibration_id


def test_a_service_never_takes_the_default_directory_s_calibration(dirs):
    default, own = dirs
    with PenSimulator(seed=5) as sim:
        CalibrationStore(default / CALIBRATIONS_NAME).save(_calibration(sim, "elsewhere", 0.4))
        with _serve(sim, own) as handle:  # nothing in its own: clients must calibrate
            assert handle.pen.calibration is None


def test_a_calibration_made_through_the_service_is_stored_in_its_own_directory(dirs):
    """calibration.auto (and save/end) use the service's store, the one it reads from."""
    from smpdevice.service.auth import Role

    from .conftest import connect, run

    default, own = dirs
    options = ServiceOptions(port="pensim://?clock=virtual&seed=3", listen="127.0.0.1:0",
                             data_dir=own, unix_socket=False, lease_ms=1000)
    with ServiceHandle(options) as handle:
        async def main() -> dict:
            tech = await connect(handle, Role.TECHNICIAN)
            await tech.drive(lease_ms=2000)
            answer = await tech.call("calibration.auto", technician="ana", depth_points=3,
                                     spin_seconds=0.1)
            await tech.close()
            return answer

        answer = run(main())
        assert answer["passed"] is True, answer["report"]
        serial = handle.pen.serial
    ident = answer["calibration_id"]
    assert CalibrationStore(own / CALIBRATIONS_NAME).entry(ident) is not None
    assert not (default / CALIBRATIONS_NAME).exists() or CalibrationStore(
        default / CALIBRATIONS_NAME).latest(serial) is None
