"""REV2B-6: a log registered in the central store under the clinic's key fingerprint by a role
without the key (the PCs' INSERT rights) is not a log of this data directory: `verify
--against` never says one of its logs was removed. Real PostgreSQL, real SQLite logs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main as cli
from smpdevice.passlog import PassLog
from smpdevice.records.central_compare import installation_logs, unclaimed_logs
from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.keys import InstallationKey
from tests.smpdevice.records.test_records_verify_missing import _log as written_log
from tests.smpdevice.records.test_records_verify_missing import data  # noqa: F401 (fixture)

psycopg = pytest.importorskip("psycopg")
FORGED = "f" * 32


def _log(path, sessions: int) -> tuple[str, int]:
    log_id = written_log(path, sessions)
    with PassLog(path, readonly=True) as log:
        return log_id, log.head()[0]


def _register_without_the_key(url: str, fingerprint: str, records: int) -> None:
    """What a PC's rights allow: a log under any fingerprint, records chained onto it."""
    prev = GENESIS_HASH
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO smp_logs (log_id, key_fingerprint) VALUES (%s, %s)",
                     (FORGED, fingerprint))
        for seq in range(1, records + 1):
            body, written = '{"forged":true}', "2026-01-01T00:00:00+00:00"
            digest = record_hash(seq, "session_open", f"S{seq}", None, written, body, prev)
            conn.execute("INSERT INTO smp_records (log_id, seq, kind, session_id, pass_id, "
                         "written_at, body, prev_hash, hash) VALUES (%s, %s, 'session_open', "
                         "%s, NULL, %s, %s, %s, %s)",
                         (FORGED, seq, f"S{seq}", written, body, prev, digest))
            prev = digest


def verify(*args: str):
    return CliRunner().invoke(cli, ["sessions", "verify", *args])


def test_a_log_registered_without_the_key_is_not_one_this_directory_lost(data, url):  # noqa: F811
    _log(data / "passlog.sqlite", 1)
    pen_id, pen_head = _log(data / "passlog-SMP-0001.sqlite", 2)
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    fingerprint = InstallationKey.load_or_create().fingerprint
    _register_without_the_key(url, fingerprint, records=3)

    held = dict(installation_logs(url, [fingerprint]))
    assert FORGED not in held and held[pen_id] == pen_head, held
    (named,) = unclaimed_logs(url, [fingerprint])
    assert f"log {FORGED} (records 1..3)" in named and "without this installation's key" in named

    check = verify("--against", url)
    assert "removed or moved" not in check.output, check.output
    # A log of the directory that is really gone is still reported, and only that one.
    for gone in data.glob("passlog-SMP-0001*"):
        gone.unlink()
    after = verify("--against", url)
    assert after.exit_code == 1, after.output
    assert f"log {pen_id} (up to record {pen_head})" in after.output, after.output
    assert f"log {FORGED} (up to record" not in after.output, after.output


def test_records_added_without_the_key_do_not_count_towards_a_lost_log(data, url):  # noqa: F811
    """A removed log is reported up to the last record its key signed, not up to records
    anyone appended after it centrally."""
    pen_id, pen_head = _log(data / "passlog-SMP-0001.sqlite", 1)
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    fingerprint = InstallationKey.load_or_create().fingerprint
    with psycopg.connect(url) as conn:  # one more record chained on, without the key
        (prev,) = conn.execute("SELECT head_hash FROM smp_logs WHERE log_id = %s",
                               (pen_id,)).fetchone()
        body, written, seq = '{"forged":true}', "2026-01-01T00:00:00+00:00", pen_head + 1
        digest = record_hash(seq, "session_open", "Sx", None, written, body, prev)
        conn.execute("INSERT INTO smp_records (log_id, seq, kind, session_id, pass_id, "
                     "written_at, body, prev_hash, hash) VALUES (%s, %s, 'session_open', 'Sx', "
                     "NULL, %s, %s, %s, %s)", (pen_id, seq, written, body, prev, digest))
    assert dict(installation_logs(url, [fingerprint])) == {pen_id: pen_head}
