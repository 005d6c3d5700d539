"""Review 20: the service installs the store's newest calibration once the pen is idle again after a
LOST LINK (session_gate.follow_store docstring, docs/service.md): a reconnect reaches idle from
`connecting` (states.py: connect DISCONNECTED->CONNECTING, connected CONNECTING->IDLE), which
follow_store's `old in SAFE or old is DISCONNECTED` never matches. Real service on loopback,
real simulator, real SQLite store."""
from __future__ import annotations

from datetime import UTC, datetime

from smpdevice.service.auth import Role
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    connect,
    data_dir,
    run,
    service,
    sim,
    wait_until,
)
from tests.smpdevice.service.test_rev20_cal_install import _copy, _in_use, _other_program_saves
from tests.smpdevice.service.test_review4_fixa_reconnect import lose_and_restore_the_link


def test_the_stores_newest_is_installed_once_idle_again_after_a_lost_link(
        service, sim, data_dir):  # noqa: F811
    given = service.pen.calibration
    newer = _copy(true_calibration(sim, technician="ana"), "imported0002", datetime.now(UTC))
    _other_program_saves(data_dir, newer)

    async def go() -> tuple[str | None, str | None]:
        viewer = await connect(service, Role.VIEWER)
        try:
            before = await _in_use(viewer)
            await lose_and_restore_the_link(service, sim)
            await wait_until(lambda: service.pen.state.value == "idle", what="idle again")
            await viewer.call("pen.state")  # any request after the reconnect
            got: list[str | None] = [None]

            async def check() -> bool:
                got[0] = await _in_use(viewer)
                return got[0] == newer.calibration_id

            for _ in range(100):  # bounded: 100 round trips after idle
                if await check():
                    break
            return before, got[0]
        finally:
            await viewer.close()

    before, after = run(go())
    assert before == given.calibration_id
    assert after == newer.calibration_id, (
        f"idle again after a lost link, the pen still runs on {after}; the store's newest is "
        f"{newer.calibration_id}")
