"""Review 16: a central store set up in another schema of a database that already holds one
(a clinic's second store, `?options=-c search_path=clinic_b`) must get its own triggers. The
setup tests `pg_trigger` by trigger name across the whole database, so it finds the first
store's triggers and creates none: the second store takes any record, never moves its head
("the central store holds records 1..0"), and accepts DELETE. docs/integration.md: "The
database itself refuses updates, deletes and any record that does not continue its log's
chain." Real SQLite, real PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.stations import station_with_log

psycopg = pytest.importorskip("psycopg")
IN_B = "?options=-c%20search_path%3Dclinic_b"


def test_a_store_in_a_second_schema_gets_its_guards(tmp_path, monkeypatch, url):
    station_with_log(tmp_path, monkeypatch)
    assert CliRunner().invoke(main, ["sessions", "sync", "--to", url]).exit_code == 0  # public
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA clinic_b")

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url + IN_B])
    # was: "12 new records sent; the central store holds records 1..0", exit 0
    assert "records 1..12" in synced.output, synced.output
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT head_seq FROM clinic_b.smp_logs").fetchone()[0] == 12
        with pytest.raises(psycopg.Error):  # was: accepted
            conn.execute("DELETE FROM clinic_b.smp_records WHERE seq = 12")


def test_the_pcs_role_with_a_schema_of_its_own_is_refused(
        tmp_path, monkeypatch, url):
    """A store set up by an older smpdevice (mark 1) and a PCs' role with INSERT/SELECT (UPDATE
    on smp_logs) that also has a schema of its own (PostgreSQL's "secure schema usage
    pattern": `CREATE SCHEMA AUTHORIZATION role`, first in the default search_path). Promised:
    "A store lacking a guard is never used by that role: it is told to run one sync or verify
    as the owner". Was: the setup ran as that role, made a second, guardless store in its
    schema, and the sync sent every record there ("holds records 1..0", exit 0)."""
    station_with_log(tmp_path, monkeypatch)
    assert CliRunner().invoke(main, ["sessions", "verify", "--against", url]).exit_code == 1
    role = "pcs_" + url.rsplit("/", 1)[1][-8:]
    with psycopg.connect(url, autocommit=True) as conn:  # the owner set the store up
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE SCHEMA AUTHORIZATION {role}")
        conn.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT UPDATE ON smp_logs TO {role}")
        conn.execute("COMMENT ON TABLE smp_logs IS 'smpdevice central schema 1'")  # older

    as_pcs = url.replace("//smp@", f"//{role}@")
    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", as_pcs])
    assert synced.exit_code == 2, synced.output  # was 0: "holds records 1..0"
    assert "tables' owner" in synced.output
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{role}.smp_records",)
                            ).fetchone()[0] is None  # was: a second store made there
