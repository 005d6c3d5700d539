"""Review 11 (revb) B7: `smp calibrate --service` and `smp run --service` take a technician's
name of the station's one limit (`checks.TECHNICIAN_MAX_CHARS`), as at the port; one more
character is refused by the command itself, before it connects, naming that limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smpdevice.checks import TECHNICIAN_MAX_CHARS
from tests.smpdevice.service.conftest import data_dir, run, service, vsim  # noqa: F401
from tests.smpdevice.shell import run as shell

ROOT = Path(__file__).resolve().parents[3]
LONGEST = "Ana " + "M" * (TECHNICIAN_MAX_CHARS - 4)


@pytest.fixture
def sim(vsim):  # noqa: F811
    return vsim  # virtual time: a calibration and a session as fast as computed


def through(service, command: str) -> tuple[int, str, str]:  # noqa: F811
    async def main():
        return await asyncio.to_thread(shell, f"{command} --service {service.url}", ROOT)
    return run(main())


def test_calibrate_through_the_service_takes_the_longest_name(service):  # noqa: F811
    status, out, err = through(service, f"smp calibrate --auto -t '{LONGEST}'")
    assert status == 0, (status, out[-500:], err[-800:])
    assert service.pen.calibration.technician == LONGEST


def test_run_through_the_service_takes_the_longest_name(service):  # noqa: F811
    status, out, err = through(service, f"smp run examples/session1_base_density.yaml "
                                        f"-t '{LONGEST}' --screening "
                                        "examples/screening_clear.yaml")
    assert status == 0, (status, out[-500:], err[-800:])


@pytest.mark.parametrize("command", ["smp calibrate --auto", "smp run "
                                     "examples/session1_base_density.yaml --screening "
                                     "examples/screening_clear.yaml"])
def test_one_character_more_is_refused_naming_the_limit(service, command):  # noqa: F811
    status, _out, err = through(service, f"{command} -t '{LONGEST}M'")
    assert status == 2, (status, err)
    assert f"at most {TECHNICIAN_MAX_CHARS} characters" in err, err
    assert "session.run: session.run" not in err
