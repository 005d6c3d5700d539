"""The service's `sessions.*` read every log of its data directory and verify as `smp sessions
verify` does (review 7b: R02, R05, R06, R09). A real service, a real simulated pen, real SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators import PenSimulator
from smpdevice.cli import main as cli
from smpdevice.passlog import PassLog
from smpdevice.records.keys import InstallationKey, load_public
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    WAIT_S,
    connect,
    data_dir,
    run,
    service,
)
from tests.smpdevice.service.test_service_resume import CLEAR, PROFILE, log_path


@pytest.fixture
def sim() -> Iterator[PenSimulator]:
    """The pen on the wall clock, not conftest's on the clock its service drives: a test here
    lists the service's session after one it wrote itself on the wall clock, and a pen's time
    that a loaded machine let fall behind the wall dates the service's records before it."""
    with PenSimulator(seed=5) as s:
        yield s


@pytest.fixture(autouse=True)
def _own_key_dir(tmp_path, monkeypatch):
    """A private installation key for each test, never the user's own."""
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))


def write_sessions(path: Path, count: int, key: InstallationKey | None = None) -> list[str]:
    opened = PassLog(path, key=key) if key is not None else PassLog.open(path)
    ids = []
    with opened as log:
        for _ in range(count):
            sid = open_session(log)
            log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
            ids.append(sid)
    return ids


def pen_log(service) -> Path:  # noqa: F811
    return log_path(service).with_name(f"passlog-{service.pen.serial}.sqlite")


async def ask(service, method: str, **params):  # noqa: F811
    """The answer, or the ServiceError refusing it."""
    viewer = await connect(service, Role.VIEWER)
    try:
        return await viewer.call(method, **params)
    except ServiceError as exc:
        return exc
    finally:
        await viewer.close()


def test_a_session_the_service_wrote_in_its_pens_own_log_is_read_everywhere(service):  # noqa: F811
    """R02: another chair's run holds the station's log, so the service records in its pen's
    own log; list, show, export and verify all see it (the old code read the station's only)."""
    station = log_path(service)
    (older,) = write_sessions(station, 1)
    other_chair = PassLog.open(station)  # held while the service's session runs

    async def main():
        op = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        await op.drive(lease_ms=1000)
        started = await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                technician="ana", quick_pass_s=0.3)
        await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await op.close()
        await viewer.close()
        return started["session_id"]

    try:
        sid = run(main())
    finally:
        other_chair.close()
    with PassLog(pen_log(service), readonly=True) as log:  # where the service recorded it
        assert log.session(sid).closed_at is not None
    listed = run(ask(service, "sessions.list"))
    assert [s["session_id"] for s in listed["sessions"]] == [older, sid]
    shown = run(ask(service, "sessions.show", session_id=sid))
    assert shown["session"]["session_id"] == sid and len(shown["passes"]) == 4
    assert shown["receipt"].startswith("SMP-RECEIPT/")  # from the pen log's anchors file
    exported = run(ask(service, "sessions.export", format="csv"))
    assert sid in exported["text"] and older in exported["text"]
    assert exported["text"].count("pass_id") == 1  # one CSV header for both logs
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is True, verified
    assert [Path(x["path"]).name for x in verified["logs"]] == [station.name,
                                                                 pen_log(service).name]


def test_verify_checks_the_pens_own_log_too(service):  # noqa: F811
    """R02: a record edited in the pen's own log is caught by the service's verify."""
    write_sessions(log_path(service), 1)
    write_sessions(pen_log(service), 1)
    import sqlite3

    with sqlite3.connect(pen_log(service)) as raw:
        raw.execute("UPDATE records SET body = replace(body, 'C-0042', 'C-9999') "
                    "WHERE kind = 'session_open'")
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is False and "record 1" in verified["problem"], verified
    assert [x["ok"] for x in verified["logs"]] == [True, False]


def test_verify_refuses_as_the_command_line_does_on_a_station_without_its_key(
        service, tmp_path, monkeypatch):  # noqa: F811
    """R05: no installation key here, a log signed by a forger's key: the old service said ok
    (it trusted the keys the log names); now it refuses as `smp sessions verify` does."""
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "no-key-yet"))
    write_sessions(log_path(service), 1, key=InstallationKey.generate())
    assert load_public() is None
    answer = run(ask(service, "sessions.verify"))
    assert isinstance(answer, ServiceError), answer
    assert answer.data["type"] == "NoTrustedKey"
    assert "cannot check signatures" in str(answer) and "--key FINGERPRINT" in str(answer)
    cli_result = CliRunner().invoke(cli, ["sessions", "verify"])
    assert cli_result.exit_code == 2 and "cannot check signatures" in cli_result.output


def test_a_log_signed_by_another_key_is_broken_for_both(service):  # noqa: F811
    """With this installation's key, a stranger's log fails in the service as in the CLI."""
    write_sessions(log_path(service), 1)  # this installation's key exists now
    write_sessions(pen_log(service), 1, key=InstallationKey.generate())
    answer = run(ask(service, "sessions.verify"))
    assert answer["ok"] is False and "not a trusted key" in answer["problem"], answer
    assert CliRunner().invoke(cli, ["sessions", "verify"]).exit_code == 1


def test_a_prefix_of_sessions_in_two_logs_is_refused_naming_them(service):  # noqa: F811
    """R09: the service resolves ids as the command line, resume and close do."""
    (a,) = write_sessions(log_path(service), 1)
    (b,) = write_sessions(pen_log(service), 1)
    common = next(a[:n] for n in range(len(a), 0, -1) if b.startswith(a[:n]))
    answer = run(ask(service, "sessions.show", session_id=common))
    assert isinstance(answer, ServiceError) and answer.data["type"] == "UnknownSession"
    assert "matches 2 sessions" in str(answer) and a in str(answer) and b in str(answer)
    assert "no session" not in str(answer)
    cli_result = CliRunner().invoke(cli, ["sessions", "show", common])
    assert cli_result.exit_code == 2 and "matches 2 sessions" in cli_result.output
    shown = run(ask(service, "sessions.show", session_id=b[:len(common) + 1]))
    assert shown["session"]["session_id"] == b  # a unique prefix, in the pen's own log
    missing = run(ask(service, "sessions.show", session_id="Snope"))
    assert "no session 'Snope'" in str(missing) and "sessions.list" in str(missing)


def test_the_list_says_when_it_is_partial_and_pages(service):  # noqa: F811
    """R06: the old list returned the last 500 and nothing said so."""
    ids = write_sessions(log_path(service), 3) + write_sessions(pen_log(service), 2)
    whole = run(ask(service, "sessions.list"))
    assert whole["total"] == 5 and whole["truncated"] is False and whole["start"] == 0
    newest = run(ask(service, "sessions.list", limit=2))
    assert newest["truncated"] is True and newest["total"] == 5 and newest["start"] == 3
    pages = [run(ask(service, "sessions.list", start=i, limit=2)) for i in (0, 2, 4)]
    assert [s["session_id"] for p in pages for s in p["sessions"]] == sorted(
        ids, key=ids.index)
    refused = run(ask(service, "sessions.list", limit=501))
    assert isinstance(refused, ServiceError) and "limit" in str(refused)
