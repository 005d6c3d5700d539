"""`smp run`, `smp demo` and `smp info` from the command line, on the built-in simulator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "examples" / "session1_base_density.yaml"
SCREENING = ROOT / "examples" / "screening_clear.yaml"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    return tmp_path


def on_pen_time(sim: PenSimulator, step: Callable[[float], bool]) -> None:
    """Call `step(now_s)` after every step of `sim`'s virtual clock, in the thread that
    advanced it (the pen's own work for that step done), until it returns True: a person's
    hand on the pen at a moment of the pen's time, whatever the machine's load."""
    clock = sim.clock
    assert isinstance(clock, VirtualClock), "a pen on virtual time"

    def listener(now_s: float) -> None:
        if step(now_s):
            clock.remove_listener(listener)

    clock.on_advance(listener)


def calibrate_default_pen(data_dir: Path) -> None:
    """Store the true calibration of the pen `pensim://` starts (seed 0)."""
    model = PenModel(seed=0)
    CalibrationStore(data_dir / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))


def short_profile(tmp_path: Path, seconds: str = "0.3") -> Path:
    text = PROFILE.read_text().replace("duration_s: 3", f"duration_s: {seconds}")
    text = text.replace("duration_s: 2", f"duration_s: {seconds}")
    text = text.replace("impressions: 25", "impressions: 3")
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_run_refuses_an_uncalibrated_pen_naming_the_fix(data_dir):
    result = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", "pensim://"])
    assert result.exit_code == 2
    assert "has no calibration" in result.output
    # A command that can be copy-pasted, with the port the run was given.
    assert "Calibrate it first: smp calibrate --port pensim:// --auto\n" in result.output
    assert "Traceback" not in result.output


def test_run_refuses_a_bad_profile_before_connecting(data_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.read_text().replace("depth_mm: 0.40", "depth_mm: 2.40", 1))
    result = CliRunner().invoke(main, ["run", str(bad), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", "pensim://"])
    assert result.exit_code != 0
    assert "zones.top.depth_mm" in result.output and "2.4" in result.output


def test_run_needs_an_answered_screening(data_dir, tmp_path, sim_virtual_time):
    calibrate_default_pen(data_dir)
    partial = tmp_path / "screening.yaml"
    partial.write_text("open_sores: false\n")
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(partial), "--port", "pensim://"])
    assert result.exit_code != 0 and "eczema" in result.output
    assert not (data_dir / "passlog.sqlite").exists() or not PassLog(
        data_dir / "passlog.sqlite", readonly=True).sessions()


def test_run_plays_the_profile_and_logs_every_pass(data_dir, tmp_path, sim_virtual_time):
    calibrate_default_pen(data_dir)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(SCREENING), "--port", "pensim://"])
    assert result.exit_code == 0, result.output
    assert "Keep the treated area dry" in result.output and "INCOMPLETE" not in result.output
    assert "on SIMULATED pen" in result.output
    assert "smp sessions show" in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert [p.outcome for p in log.passes()] == ["completed"] * 4
        assert session.technician == "ana"
        assert session.simulated is True
        assert session.summary["outcome"] == "completed"


def test_run_without_a_port_refuses_and_never_simulates(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(SCREENING)])
    assert result.exit_code == 2
    assert "no pen chosen" in result.output
    for way in ("--port", "SMP_PORT", "station config", "pensim://"):
        assert way in result.output
    assert not (data_dir / "passlog.sqlite").exists()  # nothing recorded, nothing simulated


def test_calibrate_without_a_port_refuses(data_dir):
    result = CliRunner().invoke(main, ["calibrate", "--auto"])
    assert result.exit_code == 2 and "no pen chosen" in result.output
    assert not CalibrationStore(data_dir / "calibrations.sqlite").list()


def test_smp_port_chooses_the_simulator_when_asked(data_dir, tmp_path, monkeypatch,
                                                   sim_virtual_time):
    calibrate_default_pen(data_dir)
    monkeypatch.setenv("SMP_PORT", "pensim://")
    monkeypatch.setenv("SMP_TECHNICIAN", "bea")
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)),
                                       "--screening", str(SCREENING)])
    assert result.exit_code == 0, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.technician == "bea" and session.simulated is True


def test_run_without_a_technician_refuses_before_connecting(data_dir, tmp_path):
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "--port",
                                       "pensim://", "--screening", str(SCREENING)])
    assert result.exit_code == 2 and "--technician" in result.output
    assert not (data_dir / "passlog.sqlite").exists()


def test_a_bad_profile_is_refused_before_any_screening_question(data_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.read_text().replace("depth_mm: 0.40", "depth_mm: 2.40", 1))
    result = CliRunner().invoke(main, ["run", str(bad), "-t", "ana", "--port", "pensim://"])
    assert result.exit_code != 0
    assert "zones.top.depth_mm" in result.output and "screening" not in result.output


def test_an_uncalibrated_pen_is_refused_before_the_screening_is_asked(data_dir, tmp_path):
    """At a terminal: profile, port and calibration are checked before any question."""
    import pty

    leader, follower = pty.openpty()
    try:
        child = subprocess.run(
            [sys.executable, "-m", "smpdevice", "run", str(short_profile(tmp_path)), "-t", "ana",
             "--port", "pensim://"],
            stdin=follower, capture_output=True, text=True, timeout=120, env={**os.environ},
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert child.returncode == 2, child.stderr
    assert "has no calibration" in child.stderr
    assert "screening" not in child.stdout.lower() and "?" not in child.stdout


def _run_in_process(tmp_path, sim_name: str, when_running) -> tuple:
    """`smp run` (in this process) on a named simulator on the clock the run drives;
    `when_running(sim)` is called at the first step of the pen's time with the needle running
    (on the wall clock a loaded machine stalled the run past its pen's lease: LEASE_EXPIRED
    in place of the fault, the lost pen or the E-stop these tests are about)."""
    profile = short_profile(tmp_path, seconds="30")
    with PenSimulator(seed=0, name=sim_name, clock=VirtualClock(host_driven=True)) as sim:
        def step(_now_s: float) -> bool:
            if sim.firmware.state.name != "RUNNING":
                return False
            when_running(sim)
            return True

        on_pen_time(sim, step)
        result = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                           str(SCREENING), "--port", sim.url])
    return result


def test_a_fault_ends_the_session_incomplete_with_exit_4_and_what_to_do(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    result = _run_in_process(tmp_path, "run-fault", lambda sim: sim.inject("jam"))
    out = result.output
    assert result.exit_code == 4, out
    assert "Session S" in out and "INCOMPLETE: ended by a fault" in out
    assert "0 of 4 planned passes completed. It is left OPEN, to be resumed" in out
    assert "Next: Find and remove the cause (jam, cartridge, heat), then clear the fault: " \
        "smp clear --port pensim://run-fault" in out
    assert "smp run --resume S" in out and "--port pensim://run-fault" in out
    # No aftercare sheet yet: it is printed when the session closes (resumed, or --close).
    assert "Keep the treated area dry" not in out and "Next session:" not in out
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert [p.outcome for p in log.passes()] == ["fault"]
        assert session.closed_at is None and session.summary is None  # open: resumable


def test_a_lost_pen_ends_the_session_incomplete_with_exit_6(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    result = _run_in_process(tmp_path, "run-lost", lambda sim: sim.disconnect())
    assert result.exit_code == 6, result.output
    assert "INCOMPLETE: ended because the pen was lost" in result.output
    assert "smp info --port pensim://run-lost" in result.output
    assert "smp run --resume S" in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert [p.outcome for p in log.passes()] == ["link_lost"]
        assert log.sessions()[0].closed_at is None  # left open: resumable


def test_an_estop_ends_the_session_incomplete_with_exit_5(data_dir, tmp_path):
    """The E-stop comes from session software's own thread (a UI button) during the run."""
    from rich.console import Console

    from smpdevice.cli.run import RunReport, play_profile
    from smpdevice.control import State
    from smpdevice.sessions.screening import parse_screening

    calibrate_default_pen(data_dir)

    def estop_when_running(pen) -> None:
        def press() -> None:
            pen.wait_for_state(State.RUNNING, timeout_s=60)
            pen.estop()
        threading.Thread(target=press, daemon=True).start()

    report = RunReport("pensim://?clock=virtual")  # no pen lease to lapse on a loaded machine
    play_profile(report, profile_path=str(short_profile(tmp_path, seconds="30")),
                 technician="ana", screening=parse_screening({**_clear_answers()}), db=None,
                 calibrations=None, console=Console(file=open(os.devnull, "w")),  # noqa: SIM115
                 progress_enabled=False, on_connected=estop_when_running)
    assert report.outcome.value == "estop" and report.exit_code == 5
    assert [r.outcome.value for r in report.passes] == ["estop"]
    assert report.suspended and report.sheet == "" and report.summary["outcome"] == "estop"
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert log.session(report.session_id).closed_at is None  # left open: resumable


def _clear_answers() -> dict:
    import yaml

    return yaml.safe_load(SCREENING.read_text())


class SmpRun:
    """`smp run` in a real subprocess, its JSON log events read as they come (no sleeps)."""

    def __init__(self, data_dir: Path, profile: Path) -> None:
        env = {**os.environ, "SMP_LOG_LEVEL": "info", "SMP_LOG_FORMAT": "json",
               "SMP_DATA_DIR": str(data_dir)}
        self.child = subprocess.Popen(
            [sys.executable, "-m", "smpdevice", "run", str(profile), "-t", "ana",
             "--screening", str(SCREENING), "--port", "pensim://"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.stdout = ""
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for r in self._readers:
            r.start()

    def _read_err(self) -> None:
        for line in self.child.stderr:
            with self._cond:
                self.stderr.append(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        self.events.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self) -> None:
        self.stdout = self.child.stdout.read()

    def wait_for(self, predicate, timeout_s: float = 120) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(predicate(e) for e in self.events) or self.child.poll() is not None,
                timeout=timeout_s)
            assert ok and any(predicate(e) for e in self.events), "".join(self.stderr)[-3000:]

    def interrupt_and_wait(self) -> tuple[int, str]:
        self.child.send_signal(signal.SIGINT)
        code = self.child.wait(timeout=120)
        for r in self._readers:
            r.join(timeout=60)
        return code, "".join(self.stderr)


def assert_honest(code: int, stderr: str, db: Path) -> str:
    """Exit 130, no traceback, exactly one `interrupted:` line, and that line true of the log."""
    assert code == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1, stderr[-3000:]
    line = lines[0]
    sessions, passes = [], []
    if db.exists():
        with PassLog(db, readonly=True) as log:
            sessions, passes = log.sessions(), log.passes()
            assert log.verify() is None
    if "nothing was recorded" in line:
        assert sessions == [] and passes == []
        assert "the needle never started" in line
        return line
    if line == "interrupted: the command stopped before finishing.":  # before `smp run` took
        assert sessions == [] and passes == []  # its own handler (a slow start): then nothing
        return line  # can have been sent or recorded, and the line claims nothing
    (session,) = sessions
    assert session.closed_at is not None and session.session_id in line
    if "with no pass" in line:
        assert passes == [] and "the needle never started" in line
        assert session.summary["outcome"] == "interrupted"
    else:
        assert passes and f"pass {len(passes)} as {passes[-1].outcome}" in line
        assert "the needle is stopped (the pen reports it)" in line
        assert all(p.outcome is not None for p in passes)
    return line


@pytest.mark.realtime  # `smp run` in a child process, its pen on the wall clock, signalled mid-pass
def test_ctrl_c_stops_the_needle_records_the_pass_and_exits(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    run = SmpRun(data_dir, short_profile(tmp_path, seconds="30"))
    # The first checkpoint that has strokes: the needle is running, recorded mid-pass.
    run.wait_for(lambda e: e.get("event") == "checkpoint" and e.get("strokes", 0) > 0)
    code, stderr = run.interrupt_and_wait()
    line = assert_honest(code, stderr, data_dir / "passlog.sqlite")
    assert "the needle is stopped" in line and "pass 1 as stopped" in line
    assert "INCOMPLETE: stopped by the technician" in run.stdout
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (p,) = log.passes()
        assert p.outcome == "stopped" and p.strokes > 0
        assert log.sessions()[0].summary["outcome"] == "interrupted"


@pytest.mark.parametrize("moment", ["starting", "connected", "session opened", "running",
                                    "between passes"])
@pytest.mark.realtime  # `smp run` in a child process, its pen on the wall clock, signalled mid-pass
def test_ctrl_c_at_any_moment_is_one_honest_line_and_exit_130(data_dir, tmp_path, moment):
    calibrate_default_pen(data_dir)
    seconds = "0.3" if moment == "between passes" else "30"
    run = SmpRun(data_dir, short_profile(tmp_path, seconds=seconds))
    if moment == "between passes":
        run.wait_for(lambda e: e.get("event") == "pass" and e.get("outcome") == "completed")
    elif moment == "running":  # the start was confirmed; maybe no stroke yet
        run.wait_for(lambda e: e.get("event") == "state" and e.get("new") == "running")
    else:
        run.wait_for(lambda e: e.get("event") == moment)
    code, stderr = run.interrupt_and_wait()
    line = assert_honest(code, stderr, data_dir / "passlog.sqlite")
    if moment == "session opened":  # the needle cannot have started: passes are 30 s long
        assert "the needle never started" in line or "pass 1 as stopped" in line


def test_demo_quick_runs_end_to_end(data_dir, sim_virtual_time):
    result = CliRunner().invoke(main, ["demo", "--quick"])
    assert result.exit_code == 0, result.output
    for expected in ("Calibrating automatically", "verified; saved as", "4 passes",
                     "Keep the treated area dry", "smp sessions show", "Demo finished"):
        assert expected in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert [p.outcome for p in log.passes()] == ["completed"] * 4
    assert CalibrationStore(data_dir / "calibrations.sqlite").list()


def test_info_json_reports_identity_and_limits(data_dir, sim_virtual_time):
    result = CliRunner().invoke(main, ["info", "--port", "pensim://?seed=5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["serial"] == PenModel(seed=5).serial
    assert data["limits"]["speed_max_hz"] == PenModel(seed=5).speed_max_hz
    assert data["pen_state"] == "IDLE" and data["faults"] == []


def test_info_on_a_missing_port_is_one_clear_line(data_dir):
    result = CliRunner().invoke(main, ["info", "--port", "/dev/ttyNOPE"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot open port '/dev/ttyNOPE'")
    assert "smp ports" in result.output


def test_ports_lists_json(data_dir):
    result = CliRunner().invoke(main, ["ports", "--json"])
    assert result.exit_code == 0
    assert isinstance(json.loads(result.output), list)


def test_run_with_a_stricter_envelope_file_refuses_the_profile(data_dir, tmp_path):
    strict = tmp_path / "envelope.yaml"
    strict.write_text("top:\n  dermal_ceiling_mm: 0.35\n")
    result = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING), "--envelope", str(strict), "--port",
                                       "pensim://"])
    assert result.exit_code != 0
    assert "zones.top.depth_mm" in result.output and "0.35" in result.output
