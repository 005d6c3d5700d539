"""Review 15 (service, V4): one damaged pen log in the service's data directory (a stray file
named like a pen's log, `passlog-SERIAL.sqlite`) must not take the whole pass log away from
every client. docs/service.md: "`sessions.*` read what `smp sessions` reads, through the same
code"; README (exit status 3): `smp sessions` without `--db` names a log that cannot be read in
a `warning:` line and reads the others. Through the service `sessions.list`, `sessions.show`
of a session in the station's log and `sessions.export` are refused whole instead (and the
refusal names a `--db` the service has no such option for). A real service, a real session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import connect, data_dir, run, vsim  # noqa: F401
from tests.smpdevice.service.test_service_resume import faulted_session
from tests.smpdevice.service.virtual_service import held_service, virtual_sim  # noqa: F401


def test_a_damaged_pen_log_leaves_the_station_log_readable(service, sim):
    station = service.server.service.passlog_path
    assert station is not None

    async def main() -> tuple[str, dict[str, object]]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        sid = (await faulted_session(service, sim, op, viewer))["session_id"]
        await op.close()
        station.with_name("passlog-SMP-OTHER0001.sqlite").write_bytes(b"x" * 5000)
        out: dict[str, object] = {}
        for name, params in (("sessions.list", {}), ("sessions.show", {"session_id": sid}),
                             ("sessions.export", {"format": "csv"}), ("sessions.verify", {}),
                             ("sessions.show", {"session_id": "Sffffffffffffffff"})):
            key = name if name not in out else name + " unknown"
            try:
                out[key] = await viewer.call(name, **params)
            except ServiceError as exc:
                out[key] = exc
        await viewer.close()
        return sid, out

    sid, out = run(main())
    unknown = out.pop("sessions.show unknown")
    refused = {k: str(v) for k, v in out.items() if isinstance(v, ServiceError)}
    assert not refused, f"the station's log was not read at all: {refused}"
    answers: dict[str, Any] = dict(out)
    assert [s["session_id"] for s in answers["sessions.list"]["sessions"]] == [sid]
    assert answers["sessions.show"]["session"]["session_id"] == sid
    assert sid in answers["sessions.export"]["text"]
    for name, answer in answers.items():  # the log left out is named, with how to check it
        (warning,) = answer["warnings"]
        assert "passlog-SMP-OTHER0001.sqlite" in warning and "left out" in warning, name
        assert "smp sessions verify --db" in warning, warning
    checked = {Path(x["path"]).name: x for x in answers["sessions.verify"]["logs"]}
    assert checked["passlog.sqlite"]["ok"] and checked["passlog.sqlite"]["records"] > 0
    assert not checked["passlog-SMP-OTHER0001.sqlite"]["ok"]  # a check: never "ok" whole
    assert not answers["sessions.verify"]["ok"]
    assert "cannot be read" in answers["sessions.verify"]["problem"]
    # an id in no readable log: it may be in the one left out, and the refusal says so
    assert isinstance(unknown, ServiceError) and "could not be read" in str(unknown), unknown
    assert "--db" not in str(unknown).split("could not be read")[0], unknown


@pytest.fixture
def sim(vsim):  # noqa: F811
    return vsim
