"""With footswitch `required`, lifting the pedal (or a pedal up when a pass starts) pauses the
session: `smp run` leaves it OPEN and says `smp run --resume ID`, which plays only what is
left; a new `smp run PROFILE` would replay passes already done (review 3, R02)."""
from __future__ import annotations

from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
    on_pen_time,
    short_profile,
)


def lift_pedal_in_second_pass(sim: PenSimulator) -> None:
    """50 ms (the pen's time) into the second pass the foot lifts."""
    starts, was, lift_s = 0, False, None

    def step(now_s: float) -> bool:
        nonlocal starts, was, lift_s
        running = sim.firmware.state.name == "RUNNING"
        if running and not was:
            starts += 1
            if starts == 2:
                lift_s = now_s + 0.05
        was = running
        if lift_s is not None and now_s >= lift_s:
            sim.release_pedal()
            return True
        return False

    on_pen_time(sim, step)


def test_a_pedal_lift_leaves_the_rest_of_the_plan_playable(data_dir, tmp_path,  # noqa: F811
                                                           monkeypatch):
    monkeypatch.setenv("SMP_FOOTSWITCH", "required")
    calibrate_default_pen(data_dir)
    # On virtual time, driven by the `smp` that connects (docs/simulator.md): the same passes.
    with PenSimulator(seed=0, name="r02-pedal", clock=VirtualClock(host_driven=True)) as sim:
        lift_pedal_in_second_pass(sim)
        ran = CliRunner().invoke(main, ["run", str(short_profile(tmp_path, "1.0")), "-t", "ana",
                                        "--screening", str(SCREENING), "--port", sim.url])
        with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
            (session,) = log.sessions()
            outcomes = [p.outcome for p in log.passes(session.session_id)]
        assert "footswitch_released" in outcomes, (outcomes, ran.output)
        assert "completed" in outcomes  # pass 1 done: replaying the profile would redo it
        assert session.closed_at is None, ran.output
        assert f"smp run --resume {session.session_id}" in ran.output, ran.output
        sim.press_pedal()  # "With the foot on the pedal, play only what is left"
        resumed = CliRunner().invoke(main, ["run", "--resume", session.session_id, "-t", "ana",
                                            "--screening", str(SCREENING), "--port", sim.url])
    assert resumed.exit_code == 0, (
        "after a pedal lift there is no way to play only what is left:\n" + resumed.output)
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        again = [p.index for p in log.passes(session.session_id)]
    assert again.count(0) == 1, again  # the completed pass 1 was not played again


def test_pedal_up_at_the_first_start_does_not_close_the_whole_session(data_dir, tmp_path,  # noqa: F811
                                                                      monkeypatch):
    """Foot not yet on the pedal when pass 1 starts: the pen refuses (FOOTSWITCH_UP, "press the
    pedal, then start again"), but `smp run` closes the session INCOMPLETE (exit 7, "a pass was
    stopped by the controller") and it can never be started again."""
    monkeypatch.setenv("SMP_FOOTSWITCH", "required")
    calibrate_default_pen(data_dir)
    # the pen on the clock the run drives: no wall-clock deadline for a loaded machine to miss
    ran = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                    "--screening", str(SCREENING),
                                    "--port", "pensim://?faults=pedal_up@0-100&clock=virtual"])
    assert "FOOTSWITCH_UP" in ran.output, ran.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
    assert session.closed_at is None, "closed: the 'start again' the message asks for is impossible"
    assert f"smp run --resume {session.session_id}" in ran.output, ran.output
