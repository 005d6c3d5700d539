"""Review 17 (tech): `smp calibrations list`, `CalibrationStore.latest_valid` and `smp run` take
the same calibration of a pen: its newest (the one saved last). docs/technicians.md: "a row is
`valid` only when `smp run` would take it".

A pen had a 30-day calibration, then one saved after it that has expired: the list called the
older row `valid` and `latest_valid` returned it, but `smp run` refused ("expired on ..."):
the run takes the newest. Now a row with a newer calibration of its pen saved after it is
`superseded`, and `latest_valid` is the newest one or None."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from tests.smpdevice.conftest import STATION_SPEED_CHECK
from tests.smpdevice.shell import calibrated, smp

ROOT = Path(__file__).resolve().parents[3]
PORT = "pensim://?clock=virtual"


def station(tmp_path: Path) -> dict[str, str]:
    data = calibrated(tmp_path / "data", PORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "none.toml"), SMP_LOG_LEVEL="error")
    return env


def again(current: Calibration, *, made: datetime) -> Calibration:
    """The pen's own calibration once more (its points and speed check), made at `made` with
    the default 30 days."""
    return Calibration.linear(
        pen_serial=current.pen_serial, technician="ana", offset_mm=current.offset_mm,
        gain=current.gain, created_at=made, points=current.points,
        residuals_mm=current.residuals_mm, rate_checks=current.rate_checks,
        speed_error_pct=current.speed_error_pct, simulated=True)


def listed(env: dict[str, str], *args: str) -> dict[str, str]:
    done = smp(["calibrations", "list", "--json", *args], env=env)
    assert done.returncode == 0, done.stderr
    return {row["calibration_id"]: row["status"] for row in json.loads(done.stdout)}


def test_an_expired_calibration_saved_last_leaves_the_pen_with_no_valid_one(tmp_path):
    env = station(tmp_path)
    store = CalibrationStore(Path(env["SMP_DATA_DIR"]) / "calibrations.sqlite")
    older = store.list()[0]
    expired = again(older, made=datetime.now(UTC) - timedelta(days=31))
    store.save(expired)
    assert listed(env) == {expired.calibration_id: "expired", older.calibration_id: "superseded"}
    assert listed(env, "--pen", older.pen_serial)[older.calibration_id] == "superseded"
    shown = smp(["calibrations", "show", older.calibration_id, "--json"], env=env)
    assert json.loads(shown.stdout)["status"] == "superseded", shown.stdout
    assert expired.calibration_id in json.loads(shown.stdout)["problem"]
    assert store.latest_valid(older.pen_serial) is None  # now: the older row
    assert store.latest(older.pen_serial) == expired
    done = smp(["run", str(ROOT / "examples/session1_base_density.yaml"), "--port", PORT,
                "-t", "ana", "--screening", str(ROOT / "examples/screening_clear.yaml")],
               env=env, cwd=tmp_path)
    assert done.returncode == 2 and "expired on" in done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("newest", ["valid", "future-dated"])
def test_only_the_newest_row_of_a_pen_is_ever_valid(tmp_path, newest):
    store = CalibrationStore(tmp_path / "c.sqlite")
    now = datetime.now(UTC)
    points = [(0.5, 0.3), (1.0, 0.8), (2.0, 1.8)]

    def cal(serial: str, made: datetime) -> Calibration:
        return Calibration.linear(pen_serial=serial, technician="ana", offset_mm=-0.2,
                                  gain=1.0, points=points, created_at=made,
                                  **STATION_SPEED_CHECK)

    first, other = cal("SMP-AAAA0001", now - timedelta(days=2)), cal("SMP-BBBB0002", now)
    last = cal("SMP-AAAA0001", now if newest == "valid" else now + timedelta(days=3))
    for c in (first, other, last):
        store.save(c)
    expected = last if newest == "valid" else None
    assert store.latest_valid("SMP-AAAA0001") == expected
    assert store.latest_valid("SMP-AAAA0001", now + timedelta(days=29)) == last  # its time
    assert store.latest_valid("SMP-AAAA0001", now + timedelta(days=34)) is None  # expired
    assert store.latest_valid("SMP-BBBB0002") == other  # another pen's rows do not count
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_CONFIG=str(tmp_path / "none.toml"), SMP_LOG_LEVEL="error")
    assert listed(env, "--db", str(tmp_path / "c.sqlite")) == {
        last.calibration_id: newest, other.calibration_id: "valid",
        first.calibration_id: "superseded"}
    # --limit 1 lists the newest row only: still the pen's current one, with its own status
    assert listed(env, "--db", str(tmp_path / "c.sqlite"), "--limit", "1") == {
        last.calibration_id: newest}
