"""Review 15 (service): `smp clear --service URL --reason TEXT` without `--yes` clears a latched
E-stop without asking. `smp clear --help`: "Asks before clearing (or --yes)"; README: `smp
clear` "show what is latched, ask, clear once the cause is gone", "`--yes` skips the question
in scripts", and "A question that gets no answer (standard input at its end or closed, as in a
script) is one line and exit 1: give the answer as an option (`--yes` ...)". At the pen's port
the same command with no answer clears nothing and exits 1; through the service the reason is
taken as the consent. A real service and simulated pen, the real `smp` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import connect, data_dir, service, sim  # noqa: F401

SMP = str(Path(sys.executable).with_name("smp"))


def test_clear_through_the_service_asks_before_clearing(service, data_dir):  # noqa: F811
    async def estop() -> None:
        viewer = await connect(service, Role.VIEWER)
        try:
            await viewer.estop()
        finally:
            await viewer.close()

    asyncio.run(estop())
    assert service.pen.state.value == "estop"
    done = subprocess.run([SMP, "clear", "--service", service.url, "--reason",
                           "cartridge reseated"], env=dict(os.environ, SMP_DATA_DIR=str(data_dir)),
                          input="", capture_output=True, text=True, timeout=60)
    assert service.pen.state.value == "estop", (
        f"cleared without the question being answered: {done.stdout}{done.stderr}")
    assert done.returncode == 1, (done.returncode, done.stdout + done.stderr)
