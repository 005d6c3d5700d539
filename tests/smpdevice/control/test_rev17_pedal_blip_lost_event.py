"""README "The footswitch": with `required`, a release stops the needle, "the pass ends with
outcome `footswitch_released` and `smp run` stops there (session outcome `interrupted`, exit
130)"; docs/safety.md: "A lost EVENT does not turn the stop into a fault". A short lift (4 ms,
pressed again before the next report) whose EVENT FOOTSWITCH_RELEASED the link lost is
recorded as a `fault` instead: exit 4, "ended by a fault the pen latched", and `smp clear` is
prescribed ("jam, cartridge, heat"), though the pen latched nothing (it only went ARMED, which
in REQUIRED mode only the pedal does)."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
    on_pen_time,
)

PROFILE = """schema_version: 1
session_kind: base_density
client_ref: C-0042
skin: {epidermis_mm: 0.09}
zones:
  top: {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, period_ms: 120}
plan:
  - {zone: top, impressions: 20}
"""


def blip_pedal_losing_its_event(sim: PenSimulator, after_dots: int, lift_s: float) -> None:
    """The foot slips off for `lift_s` once `after_dots` dots are made; the pen's next frame
    (its EVENT FOOTSWITCH_RELEASED) is lost on the link."""
    lifted_at: float | None = None

    def step(now_s: float) -> bool:
        nonlocal lifted_at
        if lifted_at is None and sim.firmware.impressions >= after_dots:
            sim.link.drop_next_frames(1)
            sim.release_pedal()
            lifted_at = now_s
            return False
        if lifted_at is not None and now_s >= lifted_at + lift_s:
            sim.press_pedal()
            return True
        return False

    on_pen_time(sim, step)


def test_a_pedal_blip_with_its_event_lost_is_no_latched_fault(
        data_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("SMP_FOOTSWITCH", "required")
    calibrate_default_pen(data_dir)
    profile = tmp_path / "one.yaml"
    profile.write_text(PROFILE)
    with PenSimulator(seed=0, name="floor-blip", clock=VirtualClock(host_driven=True)) as sim:
        blip_pedal_losing_its_event(sim, 5, 0.004)
        ran = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                        str(SCREENING), "--port", sim.url])
        latched = sim.firmware.faults
    assert not latched, latched  # the pen latched nothing
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        outcomes = [p.outcome for p in log.passes()]
    assert outcomes == ["footswitch_released"], (outcomes, ran.output)
    assert ran.exit_code == 130, ran.output
    assert "smp clear" not in ran.output, ran.output
