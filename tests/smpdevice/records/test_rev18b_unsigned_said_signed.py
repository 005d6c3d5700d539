"""Review 18b (finding 10a): `verify --allow-unsigned` of an intact schema-2 log (no signature
in it) printed "ok: ..., signed by this installation's key <fp> (0 signed heads)": a signer
named for a log it never signed. It now says NOT SIGNED."""

from __future__ import annotations

from tests.smpdevice.records._rev18_station import smp, station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def test_an_unsigned_log_accepted_with_allow_unsigned_is_not_said_signed(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    backup = tmp_path / "backup.sqlite"
    count = schema_2_log(db, backup)
    out = smp("sessions", "verify", "--db", str(backup), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 0, out.output
    assert "signed by" not in out.output, out.output  # was: "signed by this installation's key"
    assert out.output.startswith(f"ok: {count} records, chain intact, NOT SIGNED"), out.output
    assert "schema 1" not in out.output  # schema 2 has its head, checked
    signed = smp("sessions", "verify", "--no-anchors")  # the station's own, signed log
    assert signed.exit_code == 0, signed.output
    assert "signed by this installation's key" in signed.output
    assert "NOT SIGNED" not in signed.output
