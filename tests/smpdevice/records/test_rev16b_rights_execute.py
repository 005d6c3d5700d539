"""Review 16b: a PC role holding every right docs/integration.md lists (SELECT and INSERT on
the four tables, UPDATE on smp_logs) whose sync is refused because it may not run the chain check's
function (EXECUTE on smp_record_hash revoked from PUBLIC, a common hardening) is told it
"lacks the rights a PC syncs with" and handed the very list it already holds."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_records_central import add_session, make_log

psycopg = pytest.importorskip("psycopg")


def test_the_right_that_is_missing_is_the_one_named(tmp_path, monkeypatch, url):
    data = station_dirs(tmp_path, monkeypatch)
    from smpdevice.records.keys import InstallationKey
    from smpdevice.records.sqlite import PassLog

    key = InstallationKey.load_or_create()
    make_log(data / "passlog.sqlite", sessions=1, key=key)
    assert CliRunner().invoke(main, ["sessions", "sync", "--to", url]).exit_code == 0
    role = "pc_" + url.rsplit("/", 1)[1][-8:]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT, INSERT ON smp_installations, smp_logs, smp_records, "
                     f"smp_signed_heads TO {role}")
        conn.execute(f"GRANT UPDATE ON smp_logs TO {role}")
        conn.execute("REVOKE EXECUTE ON FUNCTION smp_record_hash(smp_records) FROM PUBLIC")
    with PassLog(data / "passlog.sqlite", key=key) as log:
        add_session(log)  # something new to send

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to",
                                       url.replace("//smp@", f"//{role}@")])
    assert synced.exit_code == 2, synced.output
    assert "smp_record_hash" in synced.output
    # it lacks none of the rights listed: the line must not say it lacks them
    assert "lacks the rights a PC syncs with" not in synced.output, synced.output
    assert "EXECUTE on function smp_record_hash" in synced.output, synced.output


@pytest.mark.parametrize(("denial", "named"), [
    ("permission denied for table smp_records", "SELECT and INSERT on smp_installations"),
    ("permission denied for function smp_record_hash", "EXECUTE on function smp_record_hash"),
    ("permission denied for schema clinic", "USAGE on schema clinic"),
    ("permission denied for sequence s1", "a right on sequence s1"),
])
def test_each_denial_names_what_it_denies(denial, named):
    from smpdevice.records.central import _missing_right

    assert named in _missing_right(denial)
    if "table" not in denial:
        assert "lacks the rights a PC syncs with" not in _missing_right(denial)
