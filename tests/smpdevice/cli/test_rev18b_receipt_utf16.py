"""Review 18b (finding 10b): docs/integration.md: `smp sessions verify --receipt
scanned-sheet.txt  # any text holding the receipt`. A text file saved as UTF-16 (Windows
Notepad's "Unicode", with its byte order mark) was refused as "not a text file", exit 2. Now
a file is decoded by its byte order mark (UTF-8, UTF-16 and UTF-32, either byte order)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import smp
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


@pytest.fixture
def receipt(tmp_path, monkeypatch) -> str:
    data = station_dirs(tmp_path, monkeypatch)
    with PassLog(data / "passlog.sqlite", key=InstallationKey.load_or_create()) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(), ended_at=T0)
        return log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={}).text()


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_a_receipt_in_a_unicode_text_file_is_read(tmp_path, receipt, codec):
    import codecs

    mark = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}.get(codec, b"")
    sheet = tmp_path / "sheet.txt"
    sheet.write_bytes(mark + f"Receipt:\r\n{receipt}\r\n".encode(codec))
    out = smp("sessions", "verify", "--receipt", str(sheet))
    assert out.exit_code == 0, out.output  # was: 2, "is not a text file"


def test_a_photo_is_still_no_text(tmp_path, receipt):
    photo = tmp_path / "sheet.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4)
    out = smp("sessions", "verify", "--receipt", str(photo))
    assert out.exit_code == 2 and "is not a text file" in out.output, out.output
    unmarked = tmp_path / "le.txt"  # UTF-16 without its mark: not taken for text either
    unmarked.write_bytes(receipt.encode("utf-16-le"))
    assert smp("sessions", "verify", "--receipt", str(unmarked)).exit_code == 2
