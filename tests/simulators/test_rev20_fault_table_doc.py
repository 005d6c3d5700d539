"""Review 20 (F7): the fault-detection numbers docs/protocol.md gives as the simulated pen's
are the simulated pen's (simulators/pen_model.py): the table cannot drift from the model."""

from __future__ import annotations

import re
from pathlib import Path

from simulators.pen_model import PenModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _rows() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("### Fault detection"):text.index("### The footswitch")]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)` \|.*$", table, re.M)}


def test_the_fault_detection_table_has_the_simulated_pen_s_numbers() -> None:
    md, rows = PenModel(), _rows()
    hysteresis = round(md.temp_clear_hysteresis_c * 100)
    assert f"`temp_max_centideg_c` - {hysteresis} ({md.temp_clear_hysteresis_c:.2f} °C" \
        in rows["OVERTEMPERATURE"]
    jam = rows["JAM"]
    assert f"time constant {round(md.motor_tau_s * 1000)} ms" in jam
    assert f"above {md.observer_min_hz:g} Hz" in jam
    assert f"below {md.observer_ratio:.0%} of it" in jam.replace(" %", "%")
    assert f"in {md.observer_ms} such driven ticks" in jam
    assert f"current above {md.jam_detect_a:.1f} A" in jam
    assert f"at or below {md.jam_detect_a:.1f} A" in rows["ENCODER_LOSS"]
    assert f"more than {md.depth_band_um} µm" in rows["DEPTH_OUT_OF_BAND"]
    assert set(rows) == {"OVERCURRENT", "OVERTEMPERATURE", "JAM", "ENCODER_LOSS",
                         "DEPTH_OUT_OF_BAND", "LEASE_EXPIRED", "CARTRIDGE_REMOVED",
                         "POWER_RESET"}
