"""Review 17: where UNSUPPORTED goes for CALIBRATION_READ/_WRITE is in the rules.

docs/protocol.md section 7: a pen whose IDENTIFY.capabilities lacks CALIBRATION_TABLE answers
CALIBRATION_READ and CALIBRATION_WRITE with UNSUPPORTED, like every check after the state's
cell, before the payload's limits. The rules (and so the C smp_rule_extra_checks() a firmware
author builds on) listed no UNSUPPORTED check for either: a pen built on them could never send
it. The simulated pen and the reflex peer have the table: the new check must pass for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_protocol import messages as m
from firmware_protocol import rules, spec
from firmware_protocol.codes import FirmwareState, LimitField, MsgType, NackReason
from tests.firmware_protocol.test_reflex_peer import GCC, Wire, peer_exe, pty_path  # noqa: F401
from tests.simulators.helpers import drive_to

CALIBRATION = (MsgType.CALIBRATION_READ, MsgType.CALIBRATION_WRITE)
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_calibration_commands_list_unsupported_first() -> None:
    for mtype in CALIBRATION:
        checks = rules.EXTRA_CHECKS.get(mtype, ())
        assert checks[:1] == (NackReason.UNSUPPORTED,), (
            f"{mtype.name}: the rules check {[c.name for c in checks]}; protocol.md section 7 "
            "says a pen without CALIBRATION_TABLE answers it UNSUPPORTED, before its limits")
    assert rules.EXTRA_CHECKS[MsgType.CALIBRATION_WRITE][1:] == (NackReason.OUT_OF_LIMITS,)


def test_the_published_state_table_lists_it() -> None:
    doc = DOC.read_text(encoding="utf-8")
    table = spec.extract(doc, "states")
    assert "| `CALIBRATION_READ` | NACK BOOTING | ok | ok | ok | ok | ok | UNSUPPORTED |" in table
    assert "NACK ESTOP_LATCHED | UNSUPPORTED, OUT_OF_LIMITS |" in table


@pytest.mark.parametrize("start", [s for s in FirmwareState if s is not FirmwareState.BOOTING],
                         ids=lambda s: s.name)
def test_the_simulated_pen_has_its_table_in_every_state(start: FirmwareState) -> None:
    sim, host = drive_to(start)
    assert isinstance(host.request(m.CalibrationRead()), m.CalibrationTable)
    write = host.request(m.CalibrationWrite.from_points([(500, 150), (1500, 1120)], 1))
    if start is FirmwareState.IDLE:
        assert write == m.Ack(MsgType.CALIBRATION_WRITE)
        bad = host.request(m.CalibrationWrite.from_points([(1500, 150), (500, 1120)], 1))
        assert (bad.reason, bad.detail) == (NackReason.OUT_OF_LIMITS, LimitField.CALIBRATION)
    else:
        assert write.reason == rules.refusal(start)  # the state's cell comes first
    sim.close()


@pytest.mark.skipif(GCC is None, reason="gcc is not installed: no reflex peer")
def test_the_reflex_peer_has_its_table(pty_path: str) -> None:  # noqa: F811
    # count 2 is REQUIRED's value: the peer must not read a calibration frame as SET_FOOTSWITCH
    wire = Wire(pty_path)
    points = m.CalibrationWrite.from_points([(500, 150), (1500, 1120)], 1)
    assert wire.send(points, 1)[0][1] == m.Ack(MsgType.CALIBRATION_WRITE)
    [(_, table, _)] = wire.send(m.CalibrationRead(), 2)
    assert isinstance(table, m.CalibrationTable) and table.count == 2
    assert wire.send(m.SetFootswitch(2), 3)[0][1].reason == NackReason.UNSUPPORTED  # no pedal
