"""Review 14 (cli): a receipt names its session, and `verify --receipt` now checks that name.

The receipt's signature covers (log, record, hash), not the session id printed in it. So a
real receipt with the session id swapped (a session the log never held, or another one of
the same log) was reported as holding, exit 0. The record a receipt names must be the close
of the session it names."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def _closed(log: PassLog, client: str):  # -> (session id, its receipt)
    sid = open_session(log, client)
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(strokes=300), ended_at=T0)
    return sid, log.close_session(sid, closed_at=datetime.now(UTC), summary={})


def test_a_receipt_naming_another_session_does_not_hold(tmp_path: Path) -> None:
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        first, receipt = _closed(log, "C-1")
        second, _ = _closed(log, "C-2")
    forged = {"unknown": dataclasses.replace(receipt, session_id="S0123456789abcdef"),
              "another": dataclasses.replace(receipt, session_id=second)}
    with PassLog(db, readonly=True) as reader:
        assert reader.audit(receipts=[("kept", receipt)]).ok
        for how, fake in forged.items():
            problem = reader.audit(receipts=[("kept", fake)]).problem
            assert problem is not None, how
            assert problem.record_id == receipt.seq, (how, problem)
            assert fake.session_id in problem.problem and first in problem.problem, problem

    # the command line: its receipt text, with the session swapped, exits 1 naming both
    shown = CliRunner().invoke(main, ["sessions", "verify", "--db", str(db), "--receipt",
                                      forged["unknown"].text()])
    assert shown.exit_code == 1, shown.output
    assert "S0123456789abcdef" in shown.output, shown.output
