"""Review 16: a password holding a raw `?` (which libpq takes as part of the password: the
user part runs to the last `@` before the path) is printed in clear in the error line.
docs/integration.md: "The central store's password, wherever the URL carries it
(`user:PASSWORD@`, ...), is shown as `***` in every message". `dsn._split` cuts the query at
the first `?` before it looks for the `@`. No server needed: port 1 on loopback refuses."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records import dsn
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_records_central import make_log

pytest.importorskip("psycopg")
URL = "postgresql://smp:Sec?ret9@127.0.0.1:1/smp"


def test_safe_masks_a_password_with_a_question_mark():
    assert "ret9" not in dsn.safe(URL)  # was: printed whole


def test_sync_never_prints_a_password_with_a_question_mark(tmp_path, monkeypatch):
    data = station_dirs(tmp_path, monkeypatch)
    from smpdevice.records.keys import InstallationKey

    make_log(data / "passlog.sqlite", sessions=1, key=InstallationKey.load_or_create())
    result = CliRunner().invoke(main, ["sessions", "sync", "--to", URL])
    assert result.exit_code == 2, result.output
    # was: "error: cannot use the central store postgresql://smp:Sec?ret9@127.0.0.1:1/smp: ..."
    assert "Sec?ret9" not in result.output and "ret9" not in result.output


@pytest.mark.parametrize("url, secret", [
    ("postgresql://smp:a?b@c=d&e@127.0.0.1:1/smp", "a?b@c=d&e"),  # a raw ? and @ in it
    ("postgresql://smp:S3?x@h:5/db?password=Qz9?w", "Qz9?w"),
    ("postgresql://h:5/db?user=a@b&password=Pw7x", "Pw7x"),  # a query item with an @ before it
    ("postgresql://smp:p/w?x@h/db", "p/w?x"),
])
def test_safe_masks_every_password_form(url, secret):
    shown = dsn.safe(url)
    assert secret not in shown and dsn.MASK in shown, shown
    assert secret in dsn.secrets(url)


def test_a_one_letter_password_is_masked_only_where_it_stands_alone():
    url = "postgresql://smp:a@127.0.0.1:1/smp"
    said = dsn.scrub('invalid value "a" for "port": smp:a@127.0.0.1', url)
    assert said == 'invalid value "***" for "port": smp:***@127.0.0.1'  # was: "inv***lid v***lue"
