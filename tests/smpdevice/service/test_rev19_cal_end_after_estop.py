"""Review 19 (gaps) finding 3: a guided calibration through the service whose save is in the
store, then an E-stop (any viewer) and its clear before the technician's
`calibration.end {calibration_id}`.

Promised: docs/service.md: the service "saves it to its own store (`calibration.save`) and
only then installs what its store holds"; "At start the service installs its pen's newest
stored calibration"; docs/technicians.md: "a run never falls back to an older calibration".
Found: the E-stop ended calibrating; `calibration.end {id}` was then refused ("needs the pen in
calibrating"), so the pen kept the calibration the store had superseded: sessions ran on it
until the service restarted (which installs the new one). Now `calibration.save` installs what
its store holds at once, and `end` with the run's own saved id is taken from idle too.
"""

from __future__ import annotations

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, measured_calibration, run


@pytest.fixture
def sim(vsim):
    """The service's pen on virtual time (as the service suite's `vsim`)."""
    return vsim


async def _calibrated(tech, sim) -> str:
    """A first guided run, saved and ended: the pen's calibration (C1)."""
    await tech.call("calibration.begin")
    first = await measured_calibration(tech, sim)
    await tech.call("calibration.save", calibration=first.model_dump(mode="json"))
    await tech.call("calibration.end", calibration_id=first.calibration_id)
    return first.calibration_id


async def _in_use(client) -> str | None:
    return ((await client.call("pen.identity"))["calibration"] or {}).get("calibration_id")


def _newest(data_dir, sim) -> str:
    newest = CalibrationStore(data_dir / "calibrations.sqlite", readonly=True).latest(sim.serial)
    assert newest is not None
    return newest.calibration_id


def test_a_saved_calibration_is_the_one_the_pen_uses(service, sim, data_dir):
    async def main() -> tuple[str, str, str | None, dict, str | None]:
        tech = await connect(service, Role.TECHNICIAN)
        viewer = await connect(service, Role.VIEWER)
        await tech.drive(lease_ms=2000)
        older = await _calibrated(tech, sim)
        await tech.call("calibration.begin")  # a second one, saved, then the E-stop
        cal = await measured_calibration(tech, sim)
        saved = await tech.call("calibration.save", calibration=cal.model_dump(mode="json"))
        assert saved["installed"] is True and await _in_use(viewer) == saved["calibration_id"]
        assert (await viewer.call("pen.estop"))["confirmed"] is True  # between save and end
        await tech.call("pen.clear_faults", reason="false alarm")
        try:  # an older stored id is still no rollback target, from idle either
            await tech.call("calibration.end", calibration_id=older)
            rollback = None
        except ServiceError as exc:
            rollback = str(exc)
        ended = await tech.call("calibration.end", calibration_id=saved["calibration_id"])
        in_use = await _in_use(viewer)
        await tech.release()
        await tech.close()
        await viewer.close()
        return saved["calibration_id"], older, rollback, ended, in_use

    saved, older, rollback, ended, in_use = run(main())
    assert _newest(data_dir, sim) == saved
    assert in_use == saved, f"the store's newest calibration is {saved}, the pen runs on {in_use}"
    assert ended["calibration_id"] == saved and ended["written_to_pen"] is False
    assert rollback is not None and "calibrating" in rollback and older != saved


def test_a_run_left_after_its_save_never_leaves_the_pen_behind_its_store(service, sim,
                                                                       data_dir):
    """Saved, then the technician's connection goes (no `end`), and another run begins and
    is abandoned: the pen still runs on the store's newest, the one that run saved."""
    async def main() -> tuple[str, str | None]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        await _calibrated(tech, sim)
        await tech.call("calibration.begin")
        cal = await measured_calibration(tech, sim)
        saved = (await tech.call("calibration.save",
                                 calibration=cal.model_dump(mode="json")))["calibration_id"]
        await tech.release()  # the dead-man ends calibrating: nothing more is installed
        await tech.close()
        other = await connect(service, Role.TECHNICIAN)
        await other.drive(lease_ms=2000)
        await other.call("calibration.begin")  # a new run forgets the last one's saved id
        await other.call("calibration.end")
        in_use = await _in_use(other)
        await other.release()
        await other.close()
        return saved, in_use

    saved, in_use = run(main())
    assert _newest(data_dir, sim) == saved
    assert in_use == saved, f"the store's newest calibration is {saved}, the pen runs on {in_use}"
