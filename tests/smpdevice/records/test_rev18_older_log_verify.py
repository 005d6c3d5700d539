"""Review 18 (finding 4): `smp sessions verify --allow-unsigned` ("accept a log written before
heads were signed") on an intact log of schema 2 (hash chain and chain head; no meta, signed
heads or signing keys), read where it lies (a backup no writer opened since), failed: "cannot
read the pass log ... (no such table: meta)", exit 3. It is checked as the plain chain."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.sqlite_schema import MIGRATIONS
from tests.smpdevice.records._rev18_station import smp, station


def schema_2_log(source: Path, target: Path) -> int:
    """`source`'s records as an older writer kept them (no key named, chained anew) in a file
    of schema 2. Returns how many records it holds."""
    with sqlite3.connect(source) as old:
        rows = old.execute("SELECT seq, kind, session_id, pass_id, written_at, body "
                           "FROM records ORDER BY seq").fetchall()
    conn = sqlite3.connect(target)
    for version, description, statements in MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                     (version, "2025-06-01T00:00:00+00:00", description))
    prev = GENESIS_HASH
    for seq, kind, sid, pid, at, body in rows:
        fields = json.loads(body)
        fields.pop("key_fingerprint", None)
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        digest = record_hash(seq, kind, sid, pid, at, text, prev)
        conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, kind, sid, pid, at, text, prev, digest))
        prev = digest
    conn.execute("INSERT INTO chain_head (id, seq, hash) VALUES (1, ?, ?)", (len(rows), prev))
    conn.commit()
    conn.close()
    return len(rows)


def test_a_schema_2_log_is_verified_with_allow_unsigned(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    backup = tmp_path / "backup.sqlite"
    count = schema_2_log(db, backup)
    out = smp("sessions", "verify", "--db", str(backup), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 0, out.output  # was: exit 3, "no such table: meta"
    assert out.output.startswith(f"ok: {count} records, chain intact"), out.output
    unsigned = smp("sessions", "verify", "--db", str(backup), "--no-anchors")
    assert unsigned.exit_code == 1, unsigned.output  # without the flag: not signed, named
    assert "written before heads were signed" in unsigned.output


def test_a_signed_log_passed_off_as_schema_2_is_named(tmp_path, monkeypatch):
    """Its schema_version cut back to 2 (so its signatures would not be asked for): the
    tables of schema 3 and 4 it still holds are named."""
    db = station(tmp_path, monkeypatch)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM schema_version WHERE version > 2")
    conn.commit()
    conn.close()
    out = smp("sessions", "verify", "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 1, out.output
    assert "table meta (on meta) was added" not in out.output
    assert "table meta was added" in out.output
