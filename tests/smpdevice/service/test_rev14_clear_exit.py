"""Review 14 (svc): README "`smp clear` refuses (exit 4) while the cause is still present (a
jam, ...)" and the exit table ("4 ... `smp clear`: its cause is still present"). Through the
service (`smp clear --service URL`), the same refusal exits 2, as a bad option would."""

from __future__ import annotations

import asyncio
import os

from simulators import DeviceFault
from smpdevice.service.auth import Role
from tests.smpdevice import shell
from tests.smpdevice.service.conftest import connect, drive_needle, wait_until


def test_clear_through_the_service_while_the_jam_is_present_exits_4(sim, service, data_dir):
    async def jam() -> None:
        client = await connect(service, Role.OPERATOR)
        try:
            await drive_needle(client, lease_ms=5000)
            sim.inject(DeviceFault.JAM)  # the cause stays present
            await wait_until(lambda: service.pen.state.value == "fault", what="the jam latched")
        finally:
            await client.close()

    asyncio.run(jam())
    # `smp` in this process (tests/smpdevice/shell.py), another client of the service all the
    # same: the pen is latched (no lease to starve) and the exit status is click's, as a
    # process's would be
    done = shell.smp(["clear", "--service", service.url, "--yes", "--reason",
                      "cartridge reseated"], env=dict(os.environ, SMP_DATA_DIR=str(data_dir)))
    assert "JAM" in done.stdout + done.stderr
    assert service.pen.state.value == "fault"  # nothing cleared
    assert done.returncode == 4, (done.returncode, done.stdout + done.stderr)
    assert "Nothing was cleared" in done.stderr, done.stderr
