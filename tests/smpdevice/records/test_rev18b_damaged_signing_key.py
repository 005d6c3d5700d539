"""Review 18b (finding 6): a row of `signing_keys` whose public key is no hex (one row added by
hand, or damaged) made `smp sessions verify` and every writer's open end in a Python traceback
(ValueError from bytes.fromhex). Verify names it (broken link, exit 1), a writer refuses the
log (LogAltered: `smp run` exits 3 with one line)."""

from __future__ import annotations

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import alter, smp, station

ROWS = {
    "not-hex": "('x', 'zz', 'now')",
    "short": "('y', 'abcd', 'now')",
    "blob": "('z', x'00112233', 'now')",
    "upper-case": f"('u', '{'AB' * 32}', 'now')",  # a writer records lower-case hex only
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_a_signing_key_that_is_no_key_is_named_and_refused(tmp_path, monkeypatch, row):
    db = station(tmp_path, monkeypatch)
    alter(db, f"INSERT INTO signing_keys (fingerprint, public_key, first_used) "
              f"VALUES {ROWS[row]}")
    verify = smp("sessions", "verify")
    assert not isinstance(verify.exception, ValueError), repr(verify.exception)  # was: so
    assert verify.exit_code == 1, verify.output
    assert verify.output.startswith("broken link: the log's signing_keys holds no key in "
                                    "its row"), verify.output
    with pytest.raises(LogAltered, match="signing_keys holds no key"):
        PassLog(db).close()  # was: ValueError (`smp run` printed a traceback)
