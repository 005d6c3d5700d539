"""Review 18 (records, minor): `smp sessions` inputs that are no file or no text get one line.

`export -o ""` said "Is a directory" (the empty name was taken for the current directory);
`verify --receipt FILE` of a binary file echoed its raw bytes into the error. Real SQLite, the
real CLI."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_records_exports import session_by


def _closed_log(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = session_by(log, "ana", "C-1", passes=1)
        receipt = log.close_session(sid, closed_at=datetime.now(UTC), summary={"passes": 1})
    return db, receipt


def test_an_empty_output_name_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    db, _ = _closed_log(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(main, ["sessions", "export", "--db", str(db), "--format",
                                       "csv", "-o", ""])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--output is empty" in lines[0], result.output
    assert "directory" not in lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # no temporary left either


def _verify(db, receipt: str):
    return CliRunner().invoke(main, ["sessions", "verify", "--db", str(db), "--receipt",
                                     receipt])


def test_a_binary_receipt_file_is_named_never_echoed(tmp_path):
    db, _ = _closed_log(tmp_path)
    photo = tmp_path / "sheet.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    result = _verify(db, str(photo))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(photo) in lines[0] and "not a text file" in lines[0], lines
    assert lines[0].isascii() and lines[0].isprintable(), lines[0]


def test_a_text_file_without_a_receipt_is_named(tmp_path):
    db, _ = _closed_log(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("client C-1 came back on Tuesday\n")
    result = _verify(db, str(notes))
    assert result.exit_code == 2, result.output
    assert f"no receipt found in the file {notes}" in result.output
    assert "Tuesday" not in result.output


def test_a_receipt_in_a_latin1_text_file_still_holds(tmp_path):
    db, receipt = _closed_log(tmp_path)
    sheet = tmp_path / "sheet.txt"
    sheet.write_bytes("Soins: caf\xe9 \u2014 re\xe7u\n".encode("latin-1", errors="replace")
                      + receipt.text().encode() + b"\n")
    result = _verify(db, str(sheet))
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
