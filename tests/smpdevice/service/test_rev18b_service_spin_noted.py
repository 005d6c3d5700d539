"""Review 18 b18d: the service's `calibration.spin` then `calibration.end` without a save moves
the needle and saves no calibration: it leaves a line in the data directory's
`needle-work.jsonl` (the pen's serial and counters before the needle moved), which a resume
reads to set a cut pass's count aside (README "Resuming an interrupted session")."""

from __future__ import annotations

import json

from firmware_protocol.codes import MsgType
from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from smpdevice.service.auth import Role

from .conftest import connect, run


def test_the_services_spin_without_a_save_leaves_a_needle_work_line(service, sim, data_dir):
    async def main() -> None:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        try:
            await tech.call("calibration.begin")
            await tech.call("calibration.spin", speed_hz=90, duration_s=0.3)
            await tech.call("calibration.end")
        finally:
            await tech.close()

    run(main())
    assert sim.firmware.executed[MsgType.NEEDLE_START] == 1
    (line,) = (data_dir / NEEDLE_WORK_NAME).read_text().splitlines()
    mark = json.loads(line)
    assert mark["pen_serial"] == sim.serial and mark["what"] == "a calibration's speed check"
    assert mark["counters"]["impressions"] <= sim.firmware.impressions - 1  # before it ran
