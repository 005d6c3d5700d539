"""review15 F7: `verify --anchors FILE --no-anchors` is refused (exit 2): a combination that
cannot be honoured is never silently skipped (integration.md)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_records_exports import session_by


def test_anchors_and_no_anchors_together_are_refused_not_one_dropped(tmp_path):
    db = tmp_path / "passlog.sqlite"
    backup = tmp_path / "old"
    backup.mkdir()
    with PassLog(db) as log:
        first = session_by(log, "ana", "C-0042")
        log.close_session(first, closed_at=datetime.now(UTC), summary={})
    for name in ("passlog.sqlite", "passlog.sqlite-wal"):  # an older copy of the log
        if (tmp_path / name).exists():
            shutil.copy2(tmp_path / name, backup / name)
    with PassLog(db) as log:
        second = session_by(log, "ana", "C-0043")
        log.close_session(second, closed_at=datetime.now(UTC), summary={})
    anchors = tmp_path / "passlog.anchors.jsonl"
    old = backup / "passlog.sqlite"

    caught = CliRunner().invoke(main, ["sessions", "verify", "--db", str(old),
                                       "--anchors", str(anchors)])
    assert caught.exit_code == 1, caught.output  # the rollback, caught by the named file

    for order in (["--anchors", str(anchors), "--no-anchors"],
                  ["--no-anchors", "--anchors", str(anchors)]):
        both = CliRunner().invoke(main, ["sessions", "verify", "--db", str(old), *order])
        assert both.exit_code == 2, both.output  # was: "ok: ... 0 receipts hold", exit 0
        assert "--no-anchors exclude each other" in both.output
        assert "ok:" not in both.output
    alone = CliRunner().invoke(main, ["sessions", "verify", "--db", str(old), "--no-anchors"])
    assert alone.exit_code == 0, alone.output  # --no-anchors alone still checks without it
