"""Review 18b (finding 1): a signed log passed off as schema 2 whole (its schema-3/4 tables
dropped with its signatures) and then rewritten (a pass_end's depth changed, the plain chain
recomputed) was "ok" for `smp sessions verify --allow-unsigned`, though each session_open in
it names the key its writer signed with; verify without the flag pointed to that flag. A writer
refuses the same file. Verify now applies the writer's rule: refused (exit 1), the flag is not
offered."""

from __future__ import annotations

import json
import sqlite3

import pytest

from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from smpdevice.records.sqlite_schema import MIGRATIONS
from tests.smpdevice.records._rev18_station import smp, station


def _downgraded(source, target, version: int = 2) -> None:
    """`source`'s records, a pass_end's depth rewritten, in a file of schema `version`."""
    with sqlite3.connect(source) as old:
        rows = old.execute("SELECT seq, kind, session_id, pass_id, written_at, body "
                           "FROM records ORDER BY seq").fetchall()
    old.close()
    conn = sqlite3.connect(target)
    for number, description, statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                     (number, "2025-06-01T00:00:00+00:00", description))
    prev = GENESIS_HASH
    for seq, kind, sid, pid, at, body in rows:  # bodies kept: session_open names its key
        if kind == "pass_end":
            fields = json.loads(body)
            fields["stats"]["depth_max_mm"] = 0.5
            body = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        digest = record_hash(seq, kind, sid, pid, at, body, prev)
        conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, kind, sid, pid, at, body, prev, digest))
        prev = digest
    if version >= 2:
        conn.execute("INSERT INTO chain_head (id, seq, hash) VALUES (1, ?, ?)",
                     (len(rows), prev))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [2, 1])
def test_a_signed_log_downgraded_is_refused_with_allow_unsigned(tmp_path, monkeypatch,
                                                                version):
    db = station(tmp_path, monkeypatch)
    down = tmp_path / "backup.sqlite"
    _downgraded(db, down, version)
    out = smp("sessions", "verify", "--db", str(down), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 1, out.output  # was: 0, "ok: 12 records ... signed by ..."
    assert out.output.startswith("broken link: this log was written signed (session "), \
        out.output
    assert "opened by a writer that signs" in out.output
    plain = smp("sessions", "verify", "--db", str(down), "--no-anchors")
    assert plain.exit_code == 1, plain.output
    assert "written before heads were signed" not in plain.output, plain.output
    assert "--allow-unsigned accepts only a log that was never signed" in plain.output
    with pytest.raises(LogAltered, match="opened by a writer that signs"):
        PassLog(down).close()  # the writer's rule, which verify now applies
