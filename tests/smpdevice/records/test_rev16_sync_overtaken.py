"""Review 16: two syncs of one log at once while a pen writes to it (a cron job's and a
technician's, docs/integration.md: "Safe while a pen runs (reads only) and beside another sync
of the same log"; "Two syncs of one log at once ... both succeed"). The sync that audited the
log before a session closed finds the central head beyond its audit (the other sync sent the
new session) and refuses the log as tampered with: "records were removed locally or the log
was replaced by an older copy" (CentralRefused, exit 1), though nothing was removed.
Real SQLite, real PostgreSQL; the interleaving is made exact with sync's `on_batch` hook."""

from __future__ import annotations

import pytest

from smpdevice.records.central import compare, sync
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_records_central import KEY, add_session, make_log

pytest.importorskip("psycopg")


def test_a_sync_overtaken_by_another_while_a_session_closed_still_succeeds(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=3)  # records 1..18
    others: list[int] = []

    def meanwhile(sent: int) -> None:
        if others:
            return
        with PassLog(db, key=KEY) as writer:  # the pen closes a session: records 19..24
            add_session(writer)
        with PassLog(db, readonly=True) as log:  # the technician's sync sends 7..24
            others.append(sync(log, url, KEY).central_head)

    with PassLog(db, readonly=True) as log:
        # the cron job's sync, audited at record 18, cut in batches of 6 records
        done = sync(log, url, KEY, batch_records=6, on_batch=meanwhile)
    # was: CentralRefused "the local log ends at record 18 but the central store holds log
    # ... up to record 24: records were removed locally or the log was replaced by an older
    # copy; nothing was sent"
    assert others == [24]
    assert done.central_head == 24
    with PassLog(db, readonly=True) as log:
        assert compare(log, url).problem is None
