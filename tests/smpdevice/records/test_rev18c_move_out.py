"""Review 18f (F1): a writer refused a log another file beside it holds with "move X out, then
run again", naming the .sqlite alone. Moved as told, its anchors file stayed: verify failed for
good ("missing: ... its anchors file holds 1 receipt", exit 1), or the next writer was refused
("the pass log ... is missing"). Every message naming a copy to move now names its anchors
file too; followed literally, the station verifies and records. Real SQLite, real CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import PassLogError
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, smp, station

_MOVE = re.compile(r"move (\S+) out(?: \(and its anchors file (\S+)\))?")


def _refusal(db: Path) -> str:
    with pytest.raises(PassLogError) as refused, PassLog(db, key=InstallationKey.load_or_create()):
        pass
    return str(refused.value)


def _follow(message: str, aside: Path) -> list[str]:
    """Move out each file the message says to move out (and nothing else)."""
    named = [p for pair in _MOVE.findall(message) for p in pair if p]
    assert named, message
    for path in named:
        shutil.move(path, aside / Path(path).name)
    return named


def _copy_whole(db: Path, to: Path) -> None:
    shutil.copy(db, to)
    shutil.copy(db.with_name("passlog.anchors.jsonl"), to.with_name(
        to.name.replace(".sqlite", ".anchors.jsonl")))


def test_moving_out_the_copy_named_leaves_the_station_verifying(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    _copy_whole(db, db.with_name("passlog-SMPX.sqlite"))
    warned = smp("sessions", "list")
    assert "(and its anchors file " + str(db.with_name("passlog-SMPX.anchors.jsonl")) in (
        warned.stderr), warned.stderr  # the readers' warning names it too
    verified = smp("sessions", "verify")
    assert verified.exit_code == 1 and "passlog-SMPX.anchors.jsonl" in verified.output
    aside = tmp_path / "aside"
    aside.mkdir()
    moved = _follow(_refusal(db), aside)
    assert str(db.with_name("passlog-SMPX.anchors.jsonl")) in moved, moved
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        add_session(log)
    verified = smp("sessions", "verify")
    assert verified.exit_code == 0, verified.output  # was: missing: passlog-SMPX.sqlite


def test_moving_out_the_older_station_log_named_lets_the_station_record(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _copy_whole(db, elsewhere / "passlog.sqlite")
    with PassLog(elsewhere / "passlog.sqlite", key=InstallationKey.load_or_create()) as log:
        add_session(log)  # written on away from the station, then brought back as a pen's
    shutil.copy(elsewhere / "passlog.sqlite", db.with_name("passlog-SMPX.sqlite"))
    shutil.copy(elsewhere / "passlog.anchors.jsonl", db.with_name("passlog-SMPX.anchors.jsonl"))
    aside = tmp_path / "aside"
    aside.mkdir()
    message = _refusal(db)
    assert f"move {db} out" in message, message  # the station's own log, an older copy
    assert _follow(message, aside) == [str(db), str(db.with_name("passlog.anchors.jsonl"))]
    with PassLog(db, key=InstallationKey.load_or_create()) as log:  # was: refused, "missing"
        add_session(log)
    assert smp("sessions", "verify").exit_code == 0
