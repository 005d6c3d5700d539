"""Review 16b: a central-store URL typed without its `//` ("postgresql:u:PASSWORD@host/db") is
refused as not a PostgreSQL URL, and the refusal prints the password in clear
(docs/integration.md: the password "is shown as `***` in every message")."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.test_records_central import make_log

SECRET = "Secret9x"


@pytest.mark.parametrize("url", [f"postgresql:u:{SECRET}@127.0.0.1/db",
                                 f"postgresql:/u:{SECRET}@127.0.0.1/db",
                                 f"postgresql//u:{SECRET}@127.0.0.1/db",
                                 f"POSTGRES:/u:{SECRET}@127.0.0.1/db",
                                 f"postgresql:u:ab:{SECRET}@127.0.0.1/db",
                                 f"postgresql:u:{SECRET}@x@127.0.0.1/db",
                                 f"postgresql:{SECRET}@127.0.0.1/db"])
@pytest.mark.parametrize("command", [["sessions", "sync", "--to"],
                                     ["sessions", "verify", "--against"]])
def test_a_mistyped_url_never_shows_its_password(tmp_path, monkeypatch, command, url):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    from smpdevice.records.keys import InstallationKey

    make_log(tmp_path / "passlog.sqlite", sessions=1, key=InstallationKey.load_or_create())
    done = CliRunner().invoke(main, [*command, url])
    assert done.exit_code == 2, done.output
    assert "not a PostgreSQL URL" in done.output
    assert SECRET not in done.output, done.output


@pytest.mark.parametrize("command", [["sessions", "sync", "--to"],
                                     ["sessions", "verify", "--against"]])
def test_a_keyword_string_with_an_escaped_space_never_shows_its_password(
        tmp_path, monkeypatch, command):
    """libpq reads `password=ab\\ cd` as the password "ab cd" (a backslash escapes in a value);
    the mask stops at the space and prints the rest."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    from smpdevice.records.keys import InstallationKey

    make_log(tmp_path / "passlog.sqlite", sessions=1, key=InstallationKey.load_or_create())
    done = CliRunner().invoke(main, [*command, "host=127.0.0.1 password=Secret9x\\ Tail7z"])
    assert done.exit_code == 2, done.output
    assert "Tail7z" not in done.output, done.output


@pytest.mark.parametrize(("typed", "hidden"), [
    ("host=h password=Secret9x\\ Tail7z", ["Secret9x", "Tail7z"]),
    ("host=h password='Secret9x Tail7z' dbname=d", ["Secret9x", "Tail7z"]),
    ("host=h password='Secret9x\\' Tail7z' dbname=d", ["Secret9x", "Tail7z"]),
    ("host=h password='Secret9x Tail7z", ["Secret9x", "Tail7z"]),  # the quote never closed
    ("host=h sslpassword=Secret9x\\ Tail7z", ["Secret9x", "Tail7z"]),
    ("u:ab:Secret9x@h/db", ["ab", "Secret9x"]),  # no scheme: all after the first : is hidden
])
def test_every_reading_of_a_password_is_masked(typed, hidden):
    from smpdevice.records import dsn

    shown = dsn.safe(typed)
    assert all(part not in shown for part in hidden), shown
    # a driver quoting the password as libpq read it (the escape undone) is scrubbed too
    quoted = f"could not connect with {typed.replace(chr(92), '')}"
    assert all(part not in dsn.scrub(quoted, typed) for part in hidden)
