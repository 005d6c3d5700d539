"""`smp estop|clear|info --service URL` (and SMP_SERVICE) against a service whose pen another
client drives: `info` and an E-stop from other terminals (real processes) while the needle
runs. The commands given once it has stopped run in this process (click's runner): each is
another client of the service all the same, without a Python process's imports (about a
CPU-second each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from tests.smpdevice.cli.test_cli_service import smp_here
from tests.smpdevice.conftest import CROWN


def smp(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smpdevice", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def here(*args: str) -> subprocess.CompletedProcess:
    return smp_here(*args, env=dict(os.environ))


def test_estop_clear_and_info_through_the_service(service, sim):
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=2000)
        op.call("pen.set_zone", zone="crown")
        op.call("pen.set_setpoints", **CROWN)
        op.call("pen.arm")
        op.call("pen.start")
        # A process, not this one: the needle runs on this process's simulated pen, whose
        # lease a first in-process `smp` (its imports) could starve on loaded cores.
        info = smp("info", "--service", service.url, "--json")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["controller_state"] == "running"
        stopped = smp("estop", env={"SMP_SERVICE": service.url})
        assert stopped.returncode == 0, stopped.stderr
        assert "E-stop latched" in stopped.stdout
        assert service.pen.state is State.ESTOP
        assert sim.firmware.state is FirmwareState.ESTOP
    refused = here("clear", "--service", service.url, "--yes")
    assert refused.returncode != 0 and "--reason" in refused.stderr
    cleared = here("clear", "--service", service.url, "--yes", "--reason", "tested the pen")
    assert cleared.returncode == 0, cleared.stderr
    assert service.pen.state is State.IDLE


def test_estop_to_an_unreachable_service_says_not_sent(data_dir, service):
    dead = service.url.rsplit(":", 1)[0] + ":1/rpc"
    result = here("estop", "--service", dead)
    assert result.returncode == 6
    assert "E-stop NOT sent" in result.stderr
