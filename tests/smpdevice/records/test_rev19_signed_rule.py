"""Known defect of session 18: verify's `once_signed` repeated the writer's rule for "this log
was ever signed" without its anchors-file part. A signed log rewritten as an older, unsigned
one (its keys dropped from its records, its chain recomputed) with its anchors file still
beside it was refused by a writer ("its anchors file ... holds receipts") while
`smp sessions verify --allow-unsigned --no-anchors` said "ok ... NOT SIGNED", exit 0. One rule
(`sqlite_layout.signed_evidence`) now decides for both."""

from __future__ import annotations

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import smp, station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def test_an_unsigned_rewrite_beside_its_receipts_is_refused_by_both(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    older = tmp_path / "older.sqlite"
    schema_2_log(db, older)  # no key named in any record, no signed head, no key
    older.replace(db)  # in place: passlog.anchors.jsonl beside it holds the closes' receipts
    out = smp("sessions", "verify", "--db", str(db), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 1, out.output  # was: 0, "ok: 12 records, chain intact, NOT SIGNED"
    assert out.output.startswith("broken link: this log was written signed (its anchors file "), \
        out.output
    assert "holds receipts" in out.output
    with pytest.raises(LogAltered, match="anchors file .* holds receipts"):
        PassLog(db).close()  # the writer's rule, which verify applies


def test_a_log_never_signed_is_still_accepted_by_both(tmp_path, monkeypatch):
    """The same records with no anchors file beside them: never signed by either rule."""
    db = station(tmp_path, monkeypatch)
    older = tmp_path / "elsewhere" / "older.sqlite"
    older.parent.mkdir()
    count = schema_2_log(db, older)
    out = smp("sessions", "verify", "--db", str(older), "--allow-unsigned", "--no-anchors")
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"ok: {count} records, chain intact"), out.output
    PassLog(older).close()  # adopted: signed from now on
    signed = smp("sessions", "verify", "--db", str(older))
    assert signed.exit_code == 0, signed.output
