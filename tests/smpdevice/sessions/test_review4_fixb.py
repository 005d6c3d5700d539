"""Review 4 (FIXB): opening a session checks the technician as a name, on the real simulator,
before anything is recorded (the service's session.run and `--resume` share this preflight)."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.passlog import PassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.sessions.test_session import CLEAR, short_profile

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("name", ["ana\tb", "ana\u202eevil", "ana\x1b[31m", "a" * 201, " "])
def test_a_session_is_not_opened_for_a_technician_that_is_not_a_name(pen, tmp_path, name):
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        with pytest.raises(InvalidArgument, match="technician"):
            TreatmentSession.open(pen, log, short_profile(), technician=name,
                                  screening=parse_screening(CLEAR))
        assert log.sessions() == []
