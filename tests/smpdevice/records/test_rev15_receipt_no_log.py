"""review15 F6: a kept receipt whose log is gone is a failed check (`missing`, exit 1), never "a
fresh station"; `sync` names a log deleted while its anchors file is left `missing` (exit 1),
as verify does. Real SQLite, the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_records_exports import session_by


def _station(data, sessions=1):
    data.mkdir()
    with PassLog(data / "passlog.sqlite") as log:
        receipts = []
        for i in range(sessions):
            sid = session_by(log, "ana", f"C-00{i}")
            receipts.append(log.close_session(sid, closed_at=datetime.now(UTC),
                                              summary={}).text())
    return receipts


def test_a_kept_receipt_with_no_log_left_is_a_failed_check_not_a_fresh_station(
        tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    receipts = _station(data, sessions=2)
    held = CliRunner().invoke(main, ["sessions", "verify", "--receipt", receipts[0]])
    assert held.exit_code == 0, held.output

    for leftover in data.iterdir():  # the log, its side files and its anchors file: gone
        leftover.unlink()
    for given in ([receipts[0]], receipts):
        gone = CliRunner().invoke(main, ["sessions", "verify",
                                         *(a for r in given for a in ("--receipt", r))])
        assert "created by the first session" not in gone.output, gone.output
        assert gone.exit_code == 1, gone.output  # a check failed: the receipt's record is gone
        assert gone.output.startswith("missing: no pass log at"), gone.output
        assert all(r.split()[1] in gone.output for r in given), gone.output  # each session
    # The whole data directory gone too: the same answer, never "nothing to verify".
    data.rmdir()
    gone = CliRunner().invoke(main, ["sessions", "verify", "--receipt", receipts[1]])
    assert gone.exit_code == 1 and "missing:" in gone.output, gone.output


def test_a_receipt_against_a_db_that_is_not_there_is_a_failed_check(tmp_path):
    receipt = _station(tmp_path / "data")[0]
    result = CliRunner().invoke(main, ["sessions", "verify", "--db",
                                       str(tmp_path / "elsewhere.sqlite"), "--receipt", receipt])
    assert result.exit_code == 1, result.output
    assert "missing: no pass log at" in result.output and "--db" in result.output


def test_sync_names_a_deleted_log_missing_not_a_fresh_station(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    _station(data)
    for name in ("passlog.sqlite", "passlog.sqlite-wal", "passlog.sqlite-shm"):
        (data / name).unlink(missing_ok=True)  # the anchors file, with its receipt, is left
    # Refused before any connection: no central store needed to see it.
    result = CliRunner().invoke(main, ["sessions", "sync", "--to",
                                       "postgresql://smp@127.0.0.1:1/none"])
    assert "created by the first session" not in result.output, result.output
    assert result.exit_code == 1, result.output
    assert result.output.startswith("missing: the pass log"), result.output
    assert "deleted or moved" in result.output
