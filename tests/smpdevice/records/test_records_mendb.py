"""READ6 mends (MENDB): one rule for which logs exist, one output check for several paths, and
the boot rule's state set used by the rule itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType as T
from firmware_protocol.rules import BEFORE_BOOT_COMPLETES, transition
from smpdevice.paths import RecordOverwriteError, pen_log_name, refuse_record_output
from smpdevice.records.logset import existing, logs_beside


def test_one_rule_for_which_logs_exist(tmp_path: Path) -> None:
    station = tmp_path / "passlog.sqlite"
    assert existing(logs_beside(station)) == []  # the service: nothing yet
    assert existing([station], keep_missing_station=True) == [station]  # reported missing
    own = tmp_path / pen_log_name("SMP-1")
    own.write_bytes(b"")
    assert existing(logs_beside(station)) == [own]
    # the station's, absent beside a pen's own log, is left out by both rules
    assert existing(logs_beside(station), keep_missing_station=True) == [own]
    station.write_bytes(b"")
    assert existing(logs_beside(station)) == [station, own]


def test_several_outputs_are_checked_at_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.h").symlink_to(tmp_path / "data" / "passlog.sqlite")
    refuse_record_output([out / "a.c"], "--out")  # a new file: fine
    with pytest.raises(RecordOverwriteError, match="b.h"):
        refuse_record_output([out / "a.c", out / "b.h"], "--out")


@pytest.mark.parametrize("state", list(S))
def test_idle_is_booting_only_from_the_states_before_the_boot_completes(state: S) -> None:
    after = transition(T.CLEAR_FAULTS, state, booted=False)
    if state in BEFORE_BOOT_COMPLETES and after is not None:
        assert after is S.BOOTING
    else:  # a FAULT cleared is a FAULT of a booted pen: IDLE, as the table says
        assert after is transition(T.CLEAR_FAULTS, state)
