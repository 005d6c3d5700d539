"""Review 11, F7 (b) and F5: smpdevice.logs never lets a log line raise, and says once, in one
line, that the detail log cannot be opened.

A log line is said on safety paths (the controller's loop thread: the pass-time limit, a lost
link), so a stderr that cannot be written (`2>/dev/full`, a reader that stopped) must cost the
line only; the first failure is kept (`log_failure()`).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path

import pytest
import structlog

from smpdevice import logs


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("detail_log", [False, True], ids=["library", "command-line"])
def test_a_log_line_on_an_unwritable_stderr_raises_nothing(monkeypatch, detail_log):
    monkeypatch.setattr(sys, "stderr", FullDisk())
    monkeypatch.setattr(logs, "_failure", None)
    logs.configure("warning", detail_log=detail_log)
    log = structlog.get_logger("smpdevice.test").bind(pen_serial="SMP-1")
    log.warning("pass time limit reached; stopping", limit_s=1.0)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("controller loop error")
    failure = logs.log_failure()
    assert isinstance(failure, OSError) and failure.errno == errno.ENOSPC


def test_a_detail_log_that_cannot_be_opened_is_said_once(monkeypatch):
    data = Path(os.environ["SMP_DATA_DIR"])  # tests/conftest.py: a fresh one
    (data / logs.DETAIL_LOG_NAME).mkdir(parents=True)  # a directory where the file belongs
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    logs.configure("warning", detail_log=True)
    log = structlog.get_logger("smpdevice.test")
    for _ in range(3):
        log.info("connected")
        log.warning("link lost", reason="cable")
    said = [line for line in err.getvalue().splitlines() if "the detail log" in line]
    assert len(said) == 1, err.getvalue()
    assert logs.DETAIL_LOG_NAME in said[0] and "cannot be written" in said[0]
    assert "Free space" not in said[0]  # not a full disk: the path is the problem
    assert err.getvalue().count("link lost") == 3  # the terminal lines go on
