"""Review 18f (LOW): a receipt saved as UTF-16LE without its byte-order mark was called "not a
text file (... a photo or a PDF, say)": the operator holding a text file was told it is a
photo. It is now said to lack its mark, and how to save it; a photo is still no text."""

from __future__ import annotations

from datetime import timedelta

from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import smp
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def test_a_utf16_receipt_without_its_mark_is_said_so(tmp_path, monkeypatch):
    data = station_dirs(tmp_path, monkeypatch)
    with PassLog(data / "passlog.sqlite", key=InstallationKey.load_or_create()) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(), ended_at=T0)
        receipt = log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={}).text()
    for codec in ("utf-16-le", "utf-16-be"):
        unmarked = tmp_path / f"{codec}.txt"
        unmarked.write_bytes(f"Receipt:\r\n{receipt}\r\n".encode(codec))
        out = smp("sessions", "verify", "--receipt", str(unmarked))
        assert out.exit_code == 2, out.output
        assert "no byte-order mark" in out.output and "save it as UTF-8" in out.output, (
            out.output)  # was: "not a text file (... a photo or a PDF, say)"
        assert "photo" not in out.output
    photo = tmp_path / "sheet.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4)
    out = smp("sessions", "verify", "--receipt", str(photo))
    assert out.exit_code == 2 and "not a text file" in out.output, out.output
