"""Review 16: a receipt whose log is gone (deleted with its anchors file) is named `missing`
by `verify --receipt` (docs/safety.md: "fails `verify --receipt` as `missing` (exit 1)"); with
`--against URL` added, the receipt is no longer mentioned at all: only the central store's
"log ... is not here" line. Exit 1 either way. Real SQLite, real PostgreSQL."""

from __future__ import annotations

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records.signing import read_anchors
from tests.smpdevice.records.stations import station_with_log


def test_a_receipt_of_a_deleted_log_is_named_with_against_too(tmp_path, monkeypatch, url):
    data = station_with_log(tmp_path, monkeypatch)
    receipt = read_anchors(data / "passlog.anchors.jsonl")[0].text()
    assert CliRunner().invoke(main, ["sessions", "sync", "--to", url]).exit_code == 0
    for path in data.iterdir():
        path.unlink()

    alone = CliRunner().invoke(main, ["sessions", "verify", "--receipt", receipt])
    assert alone.exit_code == 1 and "--receipt 1" in alone.output, alone.output
    both = CliRunner().invoke(main, ["sessions", "verify", "--receipt", receipt,
                                     "--against", url])
    assert both.exit_code == 1, both.output
    assert "--receipt 1" in both.output, both.output  # was: only the central store's line
