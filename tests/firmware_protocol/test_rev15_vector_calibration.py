"""Review 15 (K3): the golden calibration vectors hold tables the spec's own rule accepts.

docs/protocol.md section 7: a CALIBRATION_WRITE is refused (OUT_OF_LIMITS / CALIBRATION) when a
point's true depth is outside [0, depth_max_um] ("never above [the skin's] surface, even on a
pen whose command range reaches below 0"). The golden vectors mark the frames a pen must refuse
by name (`lease_renew_65535_must_nack`); `calibration_write_full` is no such frame, yet its
first point was -500 -> -480 um. Real simulator firmware on a virtual clock.
"""

from __future__ import annotations

from firmware_protocol import messages as m
from firmware_protocol.frame import decode_frame
from firmware_protocol.vectors import load_vectors
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel

VECTORS = {v["name"]: v for v in load_vectors()}


def _message(name: str) -> m.Message:
    return decode_frame(bytes.fromhex(VECTORS[name]["hex"])).message


def test_the_full_calibration_vector_is_a_table_a_pen_with_the_vector_limits_accepts() -> None:
    identify = _message("identify")
    assert isinstance(identify, m.Identify)
    fw = PenFirmware(PenModel(depth_min_um=identify.depth_min_um,
                              depth_max_um=identify.depth_max_um), VirtualClock())
    for _ in range(100):
        fw.step()  # boot
    fw.take_frames()
    fw.receive_now(bytes.fromhex(VECTORS["calibration_write_full"]["hex"]))
    replies = [decode_frame(f).message for f in fw.take_frames()]
    replies = [r for r in replies if not isinstance(r, m.Telemetry)]
    assert replies == [m.Ack(int(m.CalibrationWrite.TYPE))], (
        f"calibration_write_full is refused by the spec's own rule: {replies}")


def test_every_calibration_vector_keeps_the_rule_and_the_full_one_fills_the_table() -> None:
    """Beyond the one vector: every table in the catalogue (written or reported) has true
    depths in [0, depth_max_um] and strictly increasing commands in the IDENTIFY limits, and
    the 'full' one still uses every point, a negative command among them (a signed i16)."""
    identify = _message("identify")
    assert isinstance(identify, m.Identify)
    tables = [v["name"] for v in load_vectors()
              if v["type"] in ("CALIBRATION_WRITE", "CALIBRATION_TABLE")]
    assert "calibration_write_full" in tables
    for name in tables:
        msg = _message(name)
        assert isinstance(msg, (m.CalibrationWrite, m.CalibrationTable))
        points = msg.points()
        commands = [c for c, _ in points]
        assert commands == sorted(set(commands)), name
        for command_um, true_um in points:
            assert identify.depth_min_um <= command_um <= identify.depth_max_um, name
            assert 0 <= true_um <= identify.depth_max_um, (name, command_um, true_um)
    full = _message("calibration_write_full")
    assert isinstance(full, m.CalibrationWrite)
    assert full.count == m.CALIBRATION_POINTS
    assert min(c for c, _ in full.points()) < 0
