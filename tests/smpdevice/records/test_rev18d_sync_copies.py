"""rev18d (review 18h, b18h).
`smp sessions sync` with a stale copy of a pen's log beside it (an older backup of
passlog-SMPB.sqlite left as passlog-SMPA.sqlite, with its anchors file). `verify` fails on it
(`copied:`, exit 1) and readers read it once; sync applies no such rule: the result depends on
the file names (this order: both "synced", exit 0, the copy never named; station first: exit 1,
"records were removed locally"). Real SQLite, real PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.conftest import server_url, url  # noqa: F401 - fixtures
from tests.smpdevice.records.test_records_exports import session_by


def _closed_session(log, client):
    sid = session_by(log, "ana", client)
    log.close_session(sid, closed_at=datetime.now(UTC), summary={})


def test_sync_with_a_stale_copy_beside_fails_as_verify_does_and_names_it(
        tmp_path, monkeypatch, url):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    real = data / "passlog-SMPB.sqlite"
    with PassLog(real) as log:
        _closed_session(log, "C-0042")
    shutil.copy2(real, tmp_path / "old.sqlite")
    shutil.copy2(data / "passlog-SMPB.anchors.jsonl", tmp_path / "old.anchors.jsonl")
    with PassLog(real) as log:
        _closed_session(log, "C-0043")
    shutil.copy2(tmp_path / "old.sqlite", data / "passlog-SMPA.sqlite")
    shutil.copy2(tmp_path / "old.anchors.jsonl", data / "passlog-SMPA.anchors.jsonl")

    verified = CliRunner().invoke(main, ["sessions", "verify"])
    assert verified.exit_code == 1 and "copied:" in verified.output, verified.output

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code != 0, synced.output  # was: exit 0, "synced log ..." twice
    assert synced.exit_code == 1, synced.output  # a check failed, as verify's
    assert "copied:" in synced.output and "passlog-SMPA.sqlite" in synced.output, \
        synced.output  # the copy named
    assert synced.output.count("synced log") == 1, synced.output  # the log read, once
    assert "12 new records sent" in synced.output, synced.output  # the longer, never the copy
    again = CliRunner().invoke(main, ["sessions", "sync", "--to", url, "--db", str(real)])
    assert again.exit_code == 0 and "0 new records sent" in again.output, again.output
