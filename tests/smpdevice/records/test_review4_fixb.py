"""Review 4 (FIXB), records side: paths that are not files, damaged or emptied anchors files,
the technician's name rule. Each test failed on the code before the fix."""

from __future__ import annotations

import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError
from smpdevice.checks import BIDI_CONTROLS, InvalidArgument
from smpdevice.records.files import NotAFileError, private_file, tighten_siblings
from smpdevice.records.keys import InstallationKey
from smpdevice.records.signing import ReceiptError, anchors_path, read_anchors
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

KEY = InstallationKey.generate()
TRUSTED = {KEY.fingerprint: KEY.public}


def _closed(log: PassLog) -> int:
    sid = open_session(log)
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    return log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={}).seq


@pytest.fixture
def two_closes(tmp_path) -> tuple[Path, list[int]]:
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        seqs = [_closed(log), _closed(log)]
    return db, seqs


def _audit(db: Path, **kw):
    with PassLog(db, readonly=True) as log:
        return log.audit(trusted=TRUSTED, **kw)


# --- finding 6: a directory given for a file is refused, never re-moded ---------------------


def _user_dir(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    (d / "notes.txt").write_text("mine")
    return d


def test_a_directory_given_as_a_pass_log_is_refused_and_keeps_its_mode(tmp_path):
    d = _user_dir(tmp_path)
    with pytest.raises(NotAFileError, match="is a directory, not a file") as caught:
        PassLog(d, key=KEY)
    assert caught.value.exit_code == 2
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert not d.with_name("mine.lock").exists(), "refused before its lock file was made"


def test_a_directory_given_as_a_calibration_database_is_refused_writer_and_reader(tmp_path):
    d = _user_dir(tmp_path)
    with pytest.raises(CalibrationStoreError, match="is a directory") as caught:
        CalibrationStore(d)
    assert caught.value.exit_code == 2
    with pytest.raises(CalibrationStoreError, match="is a directory"):  # not "no calibrations"
        CalibrationStore(d, readonly=True).list()
    assert stat.S_IMODE(d.stat().st_mode) == 0o755


def test_private_file_refuses_a_fifo_and_tightening_leaves_directories_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    with pytest.raises(NotAFileError, match="named pipe"):
        private_file(fifo)
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644
    log = tmp_path / "x.sqlite"
    wal = tmp_path / "x.sqlite-wal"
    wal.mkdir(mode=0o755)
    wal.chmod(0o755)
    tighten_siblings(log)  # a file's 0600 would take a directory's x bit
    assert stat.S_IMODE(wal.stat().st_mode) == 0o755


def test_a_directory_read_as_a_pass_log_says_so(tmp_path):
    d = _user_dir(tmp_path)
    with pytest.raises(NotAFileError, match="is a directory"):
        PassLog(d, readonly=True)


# --- finding 7: a damaged anchors file is one typed error, never a traceback or a hang -------


@pytest.mark.parametrize("damage", [b"\x93garbage\n", b"[" * 100_000 + b"\n",
                                    b"[" * 3000 + b"]" * 3000 + b"\n", b"[" * 5_000_000])
def test_damaged_anchors_lines_are_named(two_closes, damage):
    db, _ = two_closes
    with anchors_path(db).open("ab") as handle:
        handle.write(damage)
    with pytest.raises(ReceiptError, match="line 3 of the anchors file .* is damaged"):
        read_anchors(anchors_path(db))
    with pytest.raises(ReceiptError, match="line 3"):
        _audit(db)


def _within(seconds: float, call):
    """`call()`'s outcome, or a failure if it has not returned in `seconds` (a hang)."""
    box: dict = {}

    def target():
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return box


def test_a_device_or_fifo_as_the_anchors_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # /dev/null stands for every device (/dev/zero would fill the memory of a regression)
    for path in (Path("/dev/null"), fifo, tmp_path):
        box = _within(30, lambda p=path: read_anchors(p))
        assert isinstance(box.get("error"), ReceiptError), box
        assert "not a regular file" in str(box["error"]) or "cannot be opened" in str(
            box["error"])


# --- an emptied or cut anchors file no longer vouches for the log ---------------------------


def test_an_intact_anchors_file_holds_every_close(two_closes):
    db, _ = two_closes
    result = _audit(db)
    assert result.ok and result.anchors_checked == 2


def test_an_emptied_anchors_file_is_refused_naming_the_first_close(two_closes):
    db, seqs = two_closes
    anchors_path(db).write_text("")
    result = _audit(db)
    assert not result.ok and result.problem.record_id == seqs[0]
    text = str(result.problem)
    assert "not in the anchors file" in text and "2 of 2 closes missing" in text
    assert "--no-anchors" in text
    assert _audit(db, anchors=False).ok  # the documented way to check without it


def test_an_anchors_file_cut_back_names_the_close_it_lost(two_closes):
    db, seqs = two_closes
    path = anchors_path(db)
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    result = _audit(db)
    assert not result.ok and result.problem.record_id == seqs[1]
    assert "1 of 2 closes missing" in str(result.problem)


def test_an_anchors_file_given_by_path_must_be_whole_receipts_need_not(two_closes, tmp_path):
    db, _ = two_closes
    backup = tmp_path / "backup.anchors.jsonl"
    lines = anchors_path(db).read_text().splitlines(keepends=True)
    backup.write_text("".join(lines))
    assert _audit(db, anchors=backup).ok
    backup.write_text(lines[1])
    assert "not in the anchors file" in str(_audit(db, anchors=backup).problem)
    # (source, receipt) pairs are anchors someone kept, not the whole file: still checked
    kept = [("kept", r) for r in read_anchors(anchors_path(db))[:1]]
    assert _audit(db, anchors=kept).ok


# --- finding 4: the technician's rule (sessions/session.py preflight, `smp run -t`, config) --


@given(st.text(min_size=1, max_size=40).filter(
    lambda t: any(ord(c) < 32 or 127 <= ord(c) < 160 or c in BIDI_CONTROLS for c in t)))
def test_any_technician_with_a_control_or_bidi_character_is_refused(name):
    from smpdevice import checks

    with pytest.raises(InvalidArgument):
        checks.technician(name)


def test_a_limit_beyond_sqlites_integers_reads_every_calibration(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    assert store.entries(limit=10**20) == []  # was "datatype mismatch", blaming the file
