"""Review 18 (finding 3): the log's schema altered without smpdevice passed verify (no record
changed): a trigger `RAISE(IGNORE)` on pass_begin, after which the next writer's pass_begin
was dropped while its head was committed (verify then blamed a removal nobody made); a column
added to `records`, after which every writer failed. Verify and a writer's open now compare the
schema with the one smpdevice writes for the log's version and name what differs; a writer's
every insert is checked to have stored its row, as written (a trigger added while it runs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import alter, smp, station
from tests.smpdevice.records.test_passlog import open_session

DROP_BEGIN = ("CREATE TRIGGER drop_begin BEFORE INSERT ON records WHEN NEW.kind = 'pass_begin' "
              "BEGIN SELECT RAISE(IGNORE); END")


@pytest.mark.parametrize(("statements", "named"), [
    ([DROP_BEGIN], "trigger drop_begin (on records) was added"),
    (["ALTER TABLE records ADD COLUMN note TEXT"], "table records has column note added"),
    (["CREATE VIEW passes AS SELECT * FROM records"], "view passes was added"),
    (["DROP INDEX records_session"], "index records_session is missing"),
    (["CREATE TRIGGER keep AFTER UPDATE ON chain_head BEGIN SELECT 1; END"],
     "trigger keep (on chain_head) was added"),
])
def test_an_altered_schema_is_named_by_verify_and_refused_by_a_writer(
        tmp_path, monkeypatch, statements, named):
    db = station(tmp_path, monkeypatch)
    alter(db, *statements)
    verify = smp("sessions", "verify")
    assert verify.exit_code == 1, verify.output  # was: ok, exit 0
    assert verify.output.startswith("broken link: the log's schema is not the one smpdevice "
                                    f"writes (schema 4): {named}"), verify.output
    with pytest.raises(LogAltered, match="changed without smpdevice: .*" + named.split(" (")[0]):
        PassLog(db).close()  # before anything is written
    assert smp("sessions", "verify").output == verify.output  # nothing was written


@pytest.mark.parametrize("trigger", [
    DROP_BEGIN,  # the pass_begin dropped: the needle would run unrecorded
    "CREATE TRIGGER blank AFTER INSERT ON records BEGIN UPDATE records SET body = '{}' "
    "WHERE seq = NEW.seq; END",  # rewritten as it is stored
    "CREATE TRIGGER strip AFTER UPDATE ON chain_head BEGIN DELETE FROM signing_keys; END",
])
def test_a_trigger_added_while_a_writer_holds_the_log_refuses_its_next_record(
        tmp_path, monkeypatch, trigger):
    db = station(tmp_path, monkeypatch, sessions=1)
    with PassLog(db) as log:
        sid = open_session(log)
        head = log.head()
        alter(db, trigger)
        with pytest.raises(LogAltered, match="was changed while this writer held it: "
                                             r"(record 8 \(pass_begin\)|the chain head)"):
            log.begin_pass(sid, index=0, zone="top", depth_mm=0.4, speed_hz=100.0,
                           duty_pct=50.0, period_ms=10.0, started_at=datetime.now(UTC))
        assert log.head() == head  # nothing of it was kept (was: a head past the last record)
    alter(db, f"DROP TRIGGER {trigger.split()[2]}")
    assert smp("sessions", "verify").exit_code == 0  # the log holds as it was
