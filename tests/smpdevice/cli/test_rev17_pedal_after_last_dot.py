"""README "Resuming an interrupted session": a pass cut (..., pedal, ...) after it made all its
dots has nothing left and counts as completed; "When it was the session's last planned pass,
the session ends completed (exit 0)". Footswitch `required`, the pedal lifted after the last
pass's last dot: `smp run` exits 0 yet leaves the session OPEN (no close record, no aftercare
sheet) and says "PAUSED ... left OPEN ... play only what is left"."""
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

# One duration pass of 3 dots (0.9 s at 300 ms): a release 50 ms after the third dot began
# leaves nothing to play (the duration less one period per dot made is 0).
PROFILE = """schema_version: 1
session_kind: base_density
client_ref: C-0042
skin: {epidermis_mm: 0.09}
zones:
  crown: {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, period_ms: 300}
plan:
  - {zone: crown, duration_s: 0.9}
"""


def lift_pedal_after_dot(sim: PenSimulator, dots: int) -> None:
    lift_s: float | None = None

    def step(now_s: float) -> bool:
        nonlocal lift_s
        if lift_s is None and sim.firmware.impressions >= dots:
            lift_s = now_s + 0.05
        if lift_s is not None and now_s >= lift_s:
            sim.release_pedal()
            return True
        return False

    on_pen_time(sim, step)


def run_lifting_after_dot_3(data: Path, profile: Path, text: str, monkeypatch):
    """`smp run` of `text` (written to `profile`) with the pedal required and lifted 50 ms
    after the third dot: (the click result, its session record, [(outcome, impressions)])."""
    monkeypatch.setenv("SMP_FOOTSWITCH", "required")
    calibrate_default_pen(data)
    profile.write_text(text)
    with PenSimulator(seed=0, name="floor-last-dot", clock=VirtualClock(host_driven=True)) as sim:
        lift_pedal_after_dot(sim, 3)
        ran = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                        str(SCREENING), "--port", sim.url])
    with PassLog(data / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        passes = [(p.outcome, p.impressions) for p in log.passes(session.session_id)]
    return ran, session, passes


def test_pedal_lifted_after_the_last_dot_ends_the_session_completed(
        data_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    ran, session, passes = run_lifting_after_dot_3(data_dir, tmp_path / "one.yaml", PROFILE,
                                                   monkeypatch)
    assert passes == [("footswitch_released", 3)], (passes, ran.output)  # the case at hand
    assert ran.exit_code == 0, ran.output
    # exit 0 says "every planned pass completed": the session must then be ended, not paused
    assert session.closed_at is not None, ran.output
    assert "Keep the treated area dry" in ran.output, ran.output
    assert "PAUSED" not in ran.output, ran.output
