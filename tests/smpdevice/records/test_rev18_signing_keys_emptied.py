"""Review 18 (finding 2): `DELETE FROM signing_keys` (no record, head or signature touched).
`smp sessions verify` said `ok` (exit 0: it checks the heads against this installation's
key), while every writer refuses the log ("its head is not signed by a key the log records:
run smp sessions verify to see what"). Verify and the writer now agree: verify fails (exit 1)
naming the head whose key the log no longer records."""

from __future__ import annotations

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import alter, smp, station


@pytest.mark.parametrize("change", [
    "DELETE FROM signing_keys",
    # the key replaced by another one (labelled as the installation's): not the signer either
    "UPDATE signing_keys SET public_key = '{other}'",
])
def test_verify_names_a_head_whose_key_the_log_no_longer_records(tmp_path, monkeypatch,
                                                                 change):
    db = station(tmp_path, monkeypatch)
    alter(db, change.format(other=InstallationKey.generate().public.hex))
    with pytest.raises(LogAltered, match="not signed by a key the log records"):
        PassLog(db).close()  # the writer refuses it...
    verify = smp("sessions", "verify")
    assert verify.exit_code == 1, verify.output  # ...and verify says why (was: ok, exit 0)
    assert verify.output.startswith("broken link: record 6: the signed head at record 6 "
                                    "(session_close) is signed by key "), verify.output
    assert "which the log does not record" in verify.output
