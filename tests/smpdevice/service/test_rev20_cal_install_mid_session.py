"""Review 20: a second `session.run` received while a session plays installs the store's newest on
the playing session's pen (work.start calls install_newest before launch refuses it as busy;
follow_store's own install checks `work.busy()` first). Held at the first pass's setpoints
(the pen idle, the session open and recorded), the install lands between that pass's
SET_SETPOINTS and its ARM. Real service on loopback, virtual-time simulator, real SQLite."""
from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401
    WAIT_S,
    connect,
    data_dir,
    run,
    service,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_rev20_cal_install import (
    RUN,
    _copy,
    _in_use,
    _other_program_saves,
    sim,  # noqa: F401
)


def test_a_refused_second_run_installs_nothing_under_a_playing_session(
        service, sim, data_dir):  # noqa: F811
    pen = service.pen
    real = pen.set_setpoints
    held, go = threading.Event(), threading.Event()

    def holding(**kwargs: Any) -> Any:
        out = real(**kwargs)
        if not held.is_set():
            held.set()
            go.wait(WAIT_S)
        return out

    pen.set_setpoints = holding  # the session thread's first pass, after its setpoints
    newer = _copy(true_calibration(sim, technician="ana"), "imported0003", datetime.now(UTC))

    async def main() -> dict[str, Any]:
        op = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        await op.drive(lease_ms=5000)
        first = await op.call("session.run", **RUN)
        await wait_until(held.is_set, what="the first pass at its setpoints")
        opened_on = await _in_use(viewer)
        await asyncio.to_thread(_other_program_saves, data_dir, newer)
        try:
            await op.call("session.run", **RUN)
            second = "opened"
        except ServiceError as exc:
            second = str(exc)
        during = await _in_use(viewer)
        go.set()
        result = await viewer.next_notification("session.result", timeout_s=60)
        await op.release()
        await op.close()
        await viewer.close()
        return {"first": first, "opened_on": opened_on, "second": second, "during": during,
                "result": result}

    out = run(main())
    assert out["second"] != "opened"
    assert out["during"] == out["opened_on"], (
        f"a refused session.run swapped the playing session's calibration "
        f"{out['opened_on']} -> {out['during']} between its setpoints and its arm; "
        f"the session then ended: {out['result']}")
