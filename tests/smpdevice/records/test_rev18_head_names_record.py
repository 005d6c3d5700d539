"""Review 18 (finding 9): with only the chain head's row rewritten (its signature or key
fingerprint) in a log whose every record is covered by a valid signed head (the last close),
verify named a record the log does not hold ("record 13" of 12). It names the head's record,
and says the head's row was rewritten."""

from __future__ import annotations

import re

import pytest

from tests.smpdevice.records._rev18_station import alter, smp, station


@pytest.mark.parametrize("change", [
    "UPDATE chain_head SET key_fingerprint = upper(key_fingerprint)",
    "UPDATE chain_head SET signature = (SELECT signature FROM signed_heads ORDER BY seq "
    "LIMIT 1)",
])
def test_a_rewritten_chain_head_names_a_record_the_log_holds(tmp_path, monkeypatch, change):
    db = station(tmp_path, monkeypatch)  # 12 records, signed heads at 6 and 12
    alter(db, change)
    out = smp("sessions", "verify")
    assert out.exit_code == 1, out.output
    named = int(re.search(r"record (\d+):", out.output).group(1))
    assert named == 12, out.output  # was: record 13
    assert "the chain head's row was rewritten" in out.output
