"""Review 14 (svc): `smp estop --service URL` refuses to send the E-stop it could send.

When the token file's mode is loosened while `smp serve` runs (a restore from a backup, an
admin's chmod, a umask), `smp estop` still reads the token fine, but refuses to use it: "E-stop
NOT sent ... readable by others", exit 6, and the pen runs on. The mode check protects the
tokens; it must not stop the one command that makes the pen safe (README: any client may
E-stop; docs/service.md: exit 6 is for a service it "cannot answer on", "also when the token
file cannot be read": this one can be read). A warning beside a sent E-stop says the same.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import connect, drive_needle, wait_until

SMP = str(Path(sys.executable).with_name("smp"))


def test_estop_is_sent_with_a_token_file_readable_by_others(sim, service, data_dir):
    async def needle() -> object:
        client = await connect(service, Role.OPERATOR)
        await drive_needle(client, lease_ms=5000)
        return client

    async def main() -> subprocess.CompletedProcess:
        client = await needle()
        try:
            (data_dir / "service.tokens.json").chmod(0o644)  # loosened while serving
            done = await asyncio.to_thread(
                subprocess.run, [SMP, "estop", "--service", service.url],
                env=dict(os.environ, SMP_DATA_DIR=str(data_dir)), capture_output=True,
                text=True, timeout=60)
            if done.returncode == 0:
                await wait_until(lambda: service.pen.state.value == "estop", what="estop")
            return done
        finally:
            await client.close()

    done = asyncio.run(main())
    assert done.returncode == 0, done.stdout + done.stderr
    assert service.pen.state.value == "estop"
    assert "readable by others" in done.stderr and "sent all the same" in done.stderr, done.stderr
