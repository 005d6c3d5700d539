"""Review 16: psycopg's own log lines ("error ignored terminating
<psycopg.Copy [BAD]>", "error ignored in rollback of <psycopg.Transaction ...>", logged when a
connection is cut or a sync interrupted mid-upload) never reach stderr beside the command's one
`error:` line: once smpdevice connects to a central store they go to its own log (smp.log).
Real PostgreSQL (the records tests' server)."""

from __future__ import annotations

import logging

import pytest

from smpdevice import logs
from smpdevice.records.central import connect

pytest.importorskip("psycopg")


def test_the_drivers_warnings_stay_off_stderr(url, capfd, tmp_path, monkeypatch):
    driver = logging.getLogger("psycopg")
    before = (list(driver.handlers), driver.propagate)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    logs.configure("warning", detail_log=True)  # as `smp` does: warnings and up on stderr
    try:
        connect(url).close()
        capfd.readouterr()
        # as psycopg logs them (psycopg/_copy.py, psycopg/transaction.py)
        logging.getLogger("psycopg").warning("error ignored terminating %r: %s",
                                             "<psycopg.Copy [BAD]>", "consuming input failed")
        logging.getLogger("psycopg.transaction").warning(
            "error ignored in rollback of %s: %s", "<psycopg.Transaction>", "server closed")
        out, err = capfd.readouterr()
        assert "error ignored" not in err and "error ignored" not in out  # was: on stderr
    finally:
        detail = logs.detail_log_path()
        logs.configure()  # closes the detail log's file
        driver.handlers[:], driver.propagate = before
    assert detail is not None  # kept in smp.log
    assert "error ignored terminating" in detail.read_text(encoding="utf-8")
