"""Review 16: a role without INSERT rights (only SELECT) is an unusable store, exit 2
(docs/integration.md: "an unusable store (a bad URL, an unreachable server, missing rights) is
exit 2"). The exit is 2, but the line says "what was committed is kept: run the sync again to
carry on", which can never help; it should name the rights, as `connect` does for a bad URL.
Real SQLite, real PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_records_central import make_log

psycopg = pytest.importorskip("psycopg")


def test_a_role_without_insert_is_told_about_its_rights(tmp_path, monkeypatch, url):
    data = station_dirs(tmp_path, monkeypatch)
    from smpdevice.records.keys import InstallationKey

    make_log(data / "passlog.sqlite", sessions=1, key=InstallationKey.load_or_create())
    CliRunner().invoke(main, ["sessions", "verify", "--against", url])  # the owner sets it up
    role = "ro_" + url.rsplit("/", 1)[1][-8:]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to",
                                       url.replace("//smp@", f"//{role}@")])
    assert synced.exit_code == 2, synced.output
    assert "permission denied" in synced.output
    # was: "... stopped (permission denied for table smp_installations); what was committed is
    # kept: run the sync again to carry on"
    assert "run the sync again" not in synced.output
