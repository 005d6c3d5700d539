"""Review 12 (REVF-1, REVF-6, REVG-10, REVG-11): `smp run` never takes an empty `--resume` for
none; a calibration expiring between passes ends the run as any unfinished session (INCOMPLETE,
exit 7, left open, resumed once recalibrated); Ctrl-C after the last pass leaves the exit status
the record's; a pen lost after the handshake, before the session, is exit 6 saying so.

In process, on the simulator (virtual time where a moment of the pen's time matters)."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from click.testing import CliRunner

import smpdevice.control.calibration as calibration_module
from simulators import PenSimulator, VirtualClock
from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    PROFILE,
    SCREENING,
    calibrate_default_pen,
    data_dir,
    on_pen_time,
    short_profile,
)
from tests.smpdevice.conftest import fit_points

RUN = ["-t", "ana", "--screening", str(SCREENING)]


def sessions_in(folder) -> list:
    path = folder / "passlog.sqlite"
    if not path.exists():
        return []
    with PassLog(path, readonly=True) as log:
        return list(log.sessions())


# ------------------------------------------------------------------ REVF-1: --resume ''


@pytest.mark.parametrize("given", ["", " ", "\t", "S1 ; rm", "S\x1b]0;x\x07", "S\u202e1",
                                   "S" * 81])
def test_an_empty_blank_or_odd_resume_id_is_refused_and_nothing_is_played(
        data_dir, tmp_path, given):  # noqa: F811
    calibrate_default_pen(data_dir)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "--resume", given,
                                       *RUN, "--port", "pensim://"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --resume"), lines
    assert "nothing was opened or played" in lines[0]
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert sessions_in(data_dir) == [], "a new session was opened"


@pytest.mark.parametrize("extra", [["--close", "--port", "pensim://"],
                                   ["--service", "ws://127.0.0.1:9"]], ids=["close", "service"])
def test_an_empty_resume_id_is_refused_with_close_and_through_a_service(
        data_dir, tmp_path, extra):  # noqa: F811
    """Through a service too: refused before the service is asked (none listens here), where
    it used to be a plain `smp run --service`, playing the whole plan anew."""
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "--resume", "",
                                       *RUN, *extra])
    assert result.exit_code == 2, result.output
    assert "no session id was given" in result.output, result.output
    assert sessions_in(data_dir) == []


# ------------------------------------------------------------------ REVF-6: expiry mid-session


def test_a_calibration_expiring_between_passes_leaves_the_session_open_exit_7_then_resumed(
        data_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    calibrations = data_dir / "own-calibrations.sqlite"
    model = PenModel(seed=0)
    store = CalibrationStore(calibrations)
    store.save(Calibration.linear(pen_serial=model.serial, technician="t",
                                  offset_mm=-model.offset_mm, gain=model.gain,
                                  **fit_points(-model.offset_mm, model.gain)))
    real, moved = calibration_module.today_utc, []

    def today():  # a month on, once pass 1 is recorded completed
        if not moved and any(p.outcome == "completed" for s in sessions_in(data_dir)
                             for p in _passes(data_dir, s.session_id)):
            moved.append(True)
        return real() + (timedelta(days=31) if moved else timedelta(0))

    monkeypatch.setattr(calibration_module, "today_utc", today)
    result = CliRunner().invoke(main, ["run", str(PROFILE), *RUN, "--port", "pensim://",
                                       "--calibrations", str(calibrations)])
    out = result.output
    assert result.exit_code == 7, out
    (session,) = sessions_in(data_dir)
    sid = session.session_id
    assert session.closed_at is None, "closed: it could never be resumed"
    assert [p.outcome for p in _passes(data_dir, sid)] == ["completed"]
    assert f"Session {sid} INCOMPLETE: ended early: the calibration of pen" in out, out
    assert "expired on" in out and "It is left OPEN, to be resumed" in out
    fix = f"smp calibrate --port pensim:// --auto --db {calibrations}"
    assert f"Next: Recalibrate the pen (the session stays open meanwhile): {fix}" in out, out
    assert f"smp run --resume {sid} --port pensim:// -t ana" in out
    assert "(prints the aftercare sheet)" in out and "Traceback" not in out

    # recalibrated (a month on), the rest is played: passes 2 to 4 only
    store.save(Calibration.linear(pen_serial=model.serial, technician="t",
                                  offset_mm=-model.offset_mm, gain=model.gain,
                                  created_at=today(),
                                  **fit_points(-model.offset_mm, model.gain)))
    resumed = CliRunner().invoke(main, ["run", "--resume", sid, *RUN, "--port", "pensim://",
                                        "--calibrations", str(calibrations)])
    assert resumed.exit_code == 0, resumed.output
    assert [p.index for p in _passes(data_dir, sid)] == [0, 1, 2, 3]
    assert sessions_in(data_dir)[0].summary["outcome"] == "completed"


def _passes(folder, sid) -> list:
    with PassLog(folder / "passlog.sqlite", readonly=True) as log:
        return list(log.passes(sid))


# ------------------------------------------------------------------ REVG-10: Ctrl-C at the end


@pytest.fixture
def ctrl_c_forgotten():
    """The process-wide Ctrl-C flag these in-process presses set is cleared after the test:
    a later in-process play_profile (of another test, same worker) must not see it."""
    from smpdevice.cli.interrupt import CTRL_C

    yield
    CTRL_C.requested = False


def ctrl_c_when_pass_stops(sim: PenSimulator, nth: int, *, at_start: bool = False) -> None:
    """A real SIGINT to this process as the pen's needle stops (or starts) for the `nth` time:
    the technician's Ctrl-C at that moment of the pen's time."""
    seen, was = 0, False

    def step(_now_s: float) -> bool:
        nonlocal seen, was
        running = sim.firmware.state.name == "RUNNING"
        if running != was and running == at_start:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGINT)
                was = running
                return True
        was = running
        return False

    on_pen_time(sim, step)


def test_ctrl_c_after_the_last_pass_keeps_the_exit_status_of_the_completed_record(
        data_dir, tmp_path, ctrl_c_forgotten):  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="fixrun-late-ctrl-c",
                      clock=VirtualClock(host_driven=True)) as sim:
        ctrl_c_when_pass_stops(sim, 4)  # the 4th and last pass's stop
        result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), *RUN,
                                           "--port", sim.url])
    (session,) = sessions_in(data_dir)
    assert session.summary["outcome"] == "completed", result.output
    assert result.exit_code == 0, result.output
    assert "interrupted:" not in result.output
    assert "Ctrl-C came too late to change session" in result.output


def test_ctrl_c_during_a_pass_is_still_exit_130_recorded_interrupted(
        data_dir, tmp_path, ctrl_c_forgotten):  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="fixrun-ctrl-c",
                      clock=VirtualClock(host_driven=True)) as sim:
        ctrl_c_when_pass_stops(sim, 2, at_start=True)  # as pass 2's needle starts
        result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path, "5")), *RUN,
                                           "--port", sim.url])
    (session,) = sessions_in(data_dir)
    assert session.summary["outcome"] == "interrupted", result.output
    assert result.exit_code == 130 and "interrupted: " in result.output, result.output


# ------------------------------------------------------------------ REVG-11: lost before


def test_a_pen_lost_right_after_the_handshake_is_exit_6_saying_so(data_dir, tmp_path):  # noqa: F811
    """The pen reports nothing until the host sets its telemetry rate (the handshake's last
    request); the port goes as that rate is set, before the first report."""
    calibrate_default_pen(data_dir)
    model = PenModel(seed=0)
    model.telemetry_default_hz = 0
    with PenSimulator(model=model, name="fixrun-lost-early",
                      clock=VirtualClock(host_driven=True)) as sim:
        def step(_now_s: float) -> bool:
            if sim.firmware.telemetry_hz > 0:
                sim.disconnect()
                return True
            return False

        on_pen_time(sim, step)
        result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), *RUN,
                                           "--port", sim.url])
    assert result.exit_code == 6, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: the pen was lost (cable, power) before the session "
                           "began"), result.output
    assert "nothing was played or recorded" in result.output
    assert sessions_in(data_dir) == []


def test_a_pen_lost_before_the_session_opens_is_exit_6_and_nothing_is_recorded(
        data_dir, tmp_path):  # noqa: F811
    from rich.console import Console

    from smpdevice.cli.interrupt import CtrlC
    from smpdevice.cli.run import RunReport, play_profile
    from smpdevice.control import State
    from smpdevice.sessions.preflight import PenLostBeforeSession
    from smpdevice.sessions.screening import parse_screening

    calibrate_default_pen(data_dir)
    # on the clock its controller drives: no wall-clock deadline for a loaded machine to miss
    with PenSimulator(seed=0, name="fixrun-lost", clock=VirtualClock(host_driven=True)) as sim:
        def pull_the_cable(pen) -> None:
            sim.disconnect()
            pen.wait_for_state(State.DISCONNECTED, timeout_s=30)

        report = RunReport("pensim://fixrun-lost")
        with pytest.raises(PenLostBeforeSession) as lost:
            play_profile(report, profile_path=str(short_profile(tmp_path)), technician="ana",
                         screening=parse_screening(_clear()), db=None, calibrations=None,
                         console=Console(file=open(os.devnull, "w")),  # noqa: SIM115
                         progress_enabled=False, on_connected=pull_the_cable,
                         ctrl_c=CtrlC())  # its own: no other test's Ctrl-C
    assert lost.value.exit_code == 6
    assert "cable" in str(lost.value) and "must be idle" not in str(lost.value)
    assert report.session_id is None and sessions_in(data_dir) == []


def test_a_port_that_never_answers_stays_a_bad_port_exit_2(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), *RUN,
                                       "--port", str(tmp_path / "no-such-port")])
    assert result.exit_code == 2, result.output
    assert "before the session began" not in result.output


def _clear() -> dict:
    import yaml

    return yaml.safe_load(SCREENING.read_text())
