"""Review 15 F9: a session's receipt was glued onto a damaged last line of the anchors file.

integration.md / safety.md: a torn last line that is not the start of the next missing receipt
is "any other damage ... left for verify to name". The next close then appends its receipt
right after those bytes, with no line break first: the new receipt becomes part of the damaged
line (verify: "line 4 ... is damaged", exit 2), so the one copy of it outside the log is lost,
and restoring the file from a backup, as verify says, drops it for good. `append_anchor` now
writes a line break first when the file does not end with one (the damage stays for verify).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from smpdevice.passlog import PassLog
from smpdevice.records.signing import anchor_line
from tests.smpdevice.records.test_records_exports import session_by


def test_a_new_receipt_starts_its_own_line_after_a_damaged_tail(tmp_path):
    db = tmp_path / "passlog.sqlite"
    anchors = tmp_path / "passlog.anchors.jsonl"
    with PassLog(db) as log:
        first = session_by(log, "ana", "C-0042")
        log.close_session(first, closed_at=datetime.now(UTC), summary={})
    with anchors.open("ab") as f:  # damage after the last whole receipt, no line break
        f.write(b'{"closed_at": "2026-11-30T1')

    with PassLog(db) as log:
        second = session_by(log, "ana", "C-0043")
        receipt = log.close_session(second, closed_at=datetime.now(UTC), summary={})

    lines = anchors.read_bytes().split(b"\n")
    whole = []
    for line in lines:
        try:
            whole.append(json.loads(line))
        except ValueError:
            continue
    assert any(r.get("seq") == receipt.seq and r.get("head_hash") == receipt.head_hash
               for r in whole), f"the new receipt is in no readable line: {lines[-3:]!r}"


def test_a_whole_anchors_file_gets_its_receipt_with_no_blank_line(tmp_path):
    """The usual case is unchanged: each receipt is one line, right after the last."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        receipts = []
        for ref in ("C-1", "C-2"):
            sid = session_by(log, "ana", ref)
            receipts.append(log.close_session(sid, closed_at=datetime.now(UTC), summary={}))
    expected = b"".join(anchor_line(r) for r in receipts)
    assert (tmp_path / "passlog.anchors.jsonl").read_bytes() == expected
