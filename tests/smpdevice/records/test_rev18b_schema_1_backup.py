"""Review 18b (finding 8): `verify --allow-unsigned` of an intact log of schema 1 (a hash chain,
no chain head yet), read where it lies, said "the chain head is missing (its table was dropped
or its row deleted)", exit 1. Schema 1 is read as having no head, and the ok line says so."""

from __future__ import annotations

import sqlite3

from smpdevice.records.sqlite_schema import MIGRATIONS
from tests.smpdevice.records._rev18_station import smp, station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def test_a_schema_1_backup_is_not_said_altered(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    two = tmp_path / "two.sqlite"
    count = schema_2_log(db, two)
    one = tmp_path / "backup.sqlite"
    conn = sqlite3.connect(one)
    for statement in MIGRATIONS[0][2]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00+00:00', ?)",
                 (MIGRATIONS[0][1],))
    conn.execute("ATTACH ? AS two", (str(two),))
    conn.execute("INSERT INTO records SELECT * FROM two.records")
    conn.commit()
    conn.close()
    out = smp("sessions", "verify", "--db", str(one), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 0, out.output  # was: 1, "its table was dropped ..."
    assert out.output.startswith(f"ok: {count} records, chain intact, NOT SIGNED"), out.output
    assert "schema 1: no chain head" in out.output
    plain = smp("sessions", "verify", "--db", str(one), "--no-anchors")
    assert plain.exit_code == 1, plain.output  # still not signed without the flag
    assert "written before heads were signed" in plain.output
    # A record edited in it is still found: only the (absent) head is not asked for.
    conn = sqlite3.connect(one)
    conn.execute("UPDATE records SET body = replace(body, '\"', ' ') WHERE seq = 3")
    conn.commit()
    conn.close()
    edited = smp("sessions", "verify", "--db", str(one), "--allow-unsigned", "--no-anchors")
    assert edited.exit_code == 1, edited.output
    assert edited.output.startswith("broken link: record 3"), edited.output
