# ruff: noqa: F811  (the sim fixture, imported)
"""Review 18 b18g: a service started in code with `ServiceOptions(data_dir=DIR)` keeps its pass
log, tokens and calibrations in DIR (docs/technicians.md: "loads its pen's calibration from
`DIR/calibrations.sqlite` only, never from the default data directory's"); its `pen.start`
outside a session writes its needle-work line into the process's default data directory
($SMP_DATA_DIR) instead: DIR's own needle-work.jsonl, beside the service's pass log (the
directory a resume of that log reads), stays empty, and an unwritable default directory
refuses every start of a service whose own directory is writable."""
from __future__ import annotations

from pathlib import Path

from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401 - the sim fixture
    PEN_LEASE_MS,
    connect,
    drive_needle,
    run,
    sim,
)


def test_a_services_bare_start_is_noted_in_its_own_data_dir(sim, tmp_path: Path,
                                                            monkeypatch) -> None:
    own, default = tmp_path / "service", tmp_path / "default"
    monkeypatch.setenv("SMP_DATA_DIR", str(default))
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=own,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim))

    async def main(service: ServiceHandle) -> None:
        op = await connect(service, Role.OPERATOR)
        try:
            await drive_needle(op)
            await op.call("pen.stop")
        finally:
            await op.close()

    with ServiceHandle(options) as service:
        run(main(service))
    assert not (default / NEEDLE_WORK_NAME).exists(), "written into the default data dir"
    assert (own / NEEDLE_WORK_NAME).exists(), "the service's own data dir has no line"


def test_an_unwritable_default_data_dir_refuses_no_start_of_a_service_with_its_own(
        sim, tmp_path: Path, monkeypatch) -> None:
    own, blocker = tmp_path / "service", tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SMP_DATA_DIR", str(blocker / "data"))  # cannot be made, even by root
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=own,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim))

    async def main(service: ServiceHandle) -> None:
        op = await connect(service, Role.OPERATOR)
        try:
            await drive_needle(op)  # refused before: the default directory's line failed
            await op.call("pen.stop")
        finally:
            await op.close()

    with ServiceHandle(options) as service:
        run(main(service))
    assert len((own / NEEDLE_WORK_NAME).read_text().splitlines()) == 1
