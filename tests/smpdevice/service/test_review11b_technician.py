"""Review 11 (revb) B7: a technician's name has one limit (`checks.TECHNICIAN_MAX_CHARS`), at
the station and through the service alike; the Python client names the method once."""

from __future__ import annotations

from importlib import resources

import pytest

from smpdevice.checks import TECHNICIAN_MAX_CHARS
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.schema import METHODS
from smpdevice.sessions.screening import QUESTIONS

from .conftest import connect, run

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}
LONGEST = "Ana " + "M" * (TECHNICIAN_MAX_CHARS - 4)


@pytest.fixture
def sim(vsim):
    return vsim  # virtual time: the session plays as fast as the computer computes it


@pytest.mark.parametrize(("method", "field"), [
    ("session.run", "technician"), ("session.resume", "technician"),
    ("calibration.auto", "technician"), ("rpc.hello", "client")])
def test_every_technician_field_has_the_stations_limit(method, field):
    assert METHODS[method].params["properties"][field]["maxLength"] == TECHNICIAN_MAX_CHARS


def test_the_longest_name_runs_a_session_and_one_more_is_refused_once_named(service):
    async def main():
        op = await connect(service, Role.OPERATOR, name=LONGEST)
        await op.drive(lease_ms=1000)
        with pytest.raises(ServiceError) as too_long:
            await op.call("session.run", profile=PROFILE, screening=CLEAR,
                          technician=LONGEST + "M")
        started = await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                technician=LONGEST, quick_pass_s=0.3)
        result = await op.next_notification("session.result", timeout_s=60)
        shown = await op.call("sessions.show", session_id=started["session_id"])
        await op.close()
        return too_long.value, result, shown

    too_long, result, shown = run(main())
    message = str(too_long)
    assert too_long.code == -32602
    assert message.startswith("session.run: technician:"), message
    assert message.count("session.run:") == 1, message
    assert f"at most {TECHNICIAN_MAX_CHARS}" in message, message
    assert result["outcome"] == "completed", result
    assert LONGEST in str(shown)
