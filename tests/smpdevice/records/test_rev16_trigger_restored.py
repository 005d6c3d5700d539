"""Review 16: a store that lacks one of the BASE triggers (here `smp_records_frozen`) gets it
back at the owner's next sync, as docs/integration.md promises ("sets up only when the store is
missing, older or lacks a trigger"; "A store lacking a guard is never used by that role: it is
told to run one sync or verify as the owner"). BASE creates its five triggers only when
`smp_records_append` is missing, so the owner's sync runs the setup, restores nothing, and
reports success; the records stay editable and the PCs' role is locked out for good.
Real SQLite, real PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.stations import station_with_log

psycopg = pytest.importorskip("psycopg")


def test_the_owners_sync_restores_a_dropped_base_trigger(tmp_path, monkeypatch, url):
    station_with_log(tmp_path, monkeypatch)
    assert CliRunner().invoke(main, ["sessions", "sync", "--to", url]).exit_code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER smp_records_frozen ON smp_records")

    again = CliRunner().invoke(main, ["sessions", "sync", "--to", url])  # as the owner
    assert again.exit_code == 0, again.output
    with psycopg.connect(url, autocommit=True) as conn:
        names = {n for (n,) in conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = "
                                            "'smp_records'::regclass").fetchall()}
        # was: still missing after the owner's sync; an UPDATE of a record is then accepted
        assert "smp_records_frozen" in names
        with pytest.raises(psycopg.Error):
            conn.execute("UPDATE smp_records SET body = '{}' WHERE seq = 2")


def test_a_disabled_guard_is_a_missing_guard(tmp_path, monkeypatch, url):
    """`is_current` counts trigger names in pg_trigger, enabled or not (and on any table): a
    guard the owner disabled passes as present, so the store is used without it."""
    station_with_log(tmp_path, monkeypatch)
    assert CliRunner().invoke(main, ["sessions", "sync", "--to", url]).exit_code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE smp_records DISABLE TRIGGER smp_records_frozen")

    CliRunner().invoke(main, ["sessions", "verify", "--against", url])  # the owner's verify
    # was: accepted (the trigger stays disabled; sync and verify say ok)
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("UPDATE smp_records SET body = '{}' WHERE seq = 2")


def test_each_dropped_or_disabled_trigger_is_restored_on_its_table(tmp_path, url):
    """Every trigger of the store, dropped or disabled (on any of its four tables), is back
    and enabled after the owner's next connection; the store is then current."""
    from smpdevice.records import central_schema
    from smpdevice.records.central import connect

    connect(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        for i, name in enumerate(central_schema.TRIGGERS):
            table = conn.execute("SELECT tgrelid::regclass::text FROM pg_trigger "
                                 "WHERE tgname = %s", (name,)).fetchone()[0]
            verb = f"DROP TRIGGER {name} ON {table}" if i % 2 else \
                f"ALTER TABLE {table} DISABLE TRIGGER {name}"
            conn.execute(verb)
        assert not central_schema.is_current(conn)
    connect(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        states = dict(conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname = "
                                   "ANY(%s)", (list(central_schema.TRIGGERS),)).fetchall())
        assert states == {name: "O" for name in central_schema.TRIGGERS}
        assert central_schema.is_current(conn)
