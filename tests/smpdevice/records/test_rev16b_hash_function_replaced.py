"""Review 16b: `verify --against` recomputed each central record's hash with smp_record_hash,
a function that lives in the central store: the tables' owner who edited a body behind the
triggers could replace it too (`SELECT r.hash`), and verify said "identical", exit 0. The
hashes are now recomputed in Python with the chain's own `record_hash`, and a store whose
functions (or a trigger's function) are not the ones this smpdevice writes is not current:
the owner's next sync or verify writes them back, a PC's role is refused (exit 2).
Real SQLite, real PostgreSQL (the records tests' server)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records import central_schema
from tests.smpdevice.records.test_rev16_central_rows_edited import _as_owner, _station

psycopg = pytest.importorskip("psycopg")

FAKE_HASH = ("CREATE OR REPLACE FUNCTION smp_record_hash(r smp_records) RETURNS TEXT "
             "LANGUAGE sql STABLE AS $$ SELECT r.hash $$")


def _function_source(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT prosrc FROM pg_proc WHERE oid = "
                            "'smp_record_hash(smp_records)'::regprocedure").fetchone()[0]


def test_a_body_edited_with_the_hash_function_replaced_is_named(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "UPDATE smp_records SET body = replace(body, '0.4', '9.9') WHERE seq = 3",
              FAKE_HASH)
    with psycopg.connect(url) as conn:  # the store says a pass ran ~9.9 mm deep
        assert "9.9" in conn.execute("SELECT body FROM smp_records WHERE seq = 3").fetchone()[0]

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])
    # was: "ok ... identical to the local records", exit 0
    assert "identical" not in checked.output, checked.output
    assert checked.exit_code == 1, checked.output
    assert "record 3 of log" in checked.output and "does not match its own hash" in \
        checked.output, checked.output


def test_the_hash_is_not_the_stores_even_when_its_function_is_left_alone(
        tmp_path, monkeypatch, url):
    """The central check calls no function of the store: one that raises is never reached."""
    _station(tmp_path, monkeypatch, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION smp_record_hash(r smp_records) RETURNS TEXT "
                     "LANGUAGE plpgsql STABLE AS $$ BEGIN RAISE EXCEPTION 'called'; END $$")
    from smpdevice.records import central_compare

    with psycopg.connect(url, autocommit=True) as conn:
        log_id = conn.execute("SELECT log_id FROM smp_logs").fetchone()[0]
        assert central_compare.central_fault(conn, log_id, 18) is None
        conn.execute("ALTER TABLE smp_records DISABLE TRIGGER USER")
        conn.execute("UPDATE smp_records SET written_at = written_at || ' ' WHERE seq = 7")
        assert central_compare.central_fault(conn, log_id, 18) == (
            7, "does not match its own hash (its content was edited)")


def test_the_owners_verify_writes_the_hash_function_back(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FAKE_HASH)
        assert not central_schema.is_current(conn)
    assert "r.hash" in _function_source(url)

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])  # the owner
    assert checked.exit_code == 0, checked.output
    assert "sha256" in _function_source(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert central_schema.is_current(conn)


def test_a_trigger_pointed_at_another_function_is_put_back(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION smp_let_through() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RETURN NEW; END $$")
        conn.execute("DROP TRIGGER smp_records_frozen ON smp_records")
        conn.execute("CREATE TRIGGER smp_records_frozen BEFORE UPDATE OR DELETE ON smp_records "
                     "FOR EACH ROW EXECUTE FUNCTION smp_let_through()")
        assert not central_schema.is_current(conn)

    assert CliRunner().invoke(main, ["sessions", "verify", "--against", url]).exit_code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        assert central_schema.is_current(conn)
        with pytest.raises(psycopg.Error):  # frozen again
            conn.execute("UPDATE smp_records SET body = '{}' WHERE seq = 2")


def test_a_pcs_role_is_refused_a_store_whose_hash_function_was_replaced(
        tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    role = "pc_" + url.rsplit("/", 1)[1][-8:]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT, INSERT ON smp_installations, smp_logs, smp_records, "
                     f"smp_signed_heads TO {role}")
        conn.execute(f"GRANT UPDATE ON smp_logs TO {role}")
        conn.execute(FAKE_HASH)

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to",
                                       url.replace("//smp@", f"//{role}@")])
    assert synced.exit_code == 2, synced.output
    assert "not set up for this smpdevice" in synced.output, synced.output
