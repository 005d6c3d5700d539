"""The integrator's example (examples/session_software.py) runs, and does what docs/integration.md
says it does: calibrate, open a session from the session-1 profile, play it, close it."""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.passlog import PassLog
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "session_software.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("session_software_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_session_software_example_plays_a_whole_session(tmp_path, monkeypatch, capsys):
    # Its main() in this process: the example as a program (`python examples/...`, exit 0) is
    # docs/integration.md's command, run by test_docs.py, and its exit code without a pen is
    # test_the_example_never_simulates_unless_asked's; a process here cost 0.5 CPU-s of imports.
    # Its simulated pen on virtual time (docs/simulator.md): the same session, played faster.
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    monkeypatch.chdir(tmp_path)
    code = _load_example().main(["--simulator", "--quick"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Traceback" not in err
    assert "No stored calibration: calibrating" in out and "saved: offset" in out
    assert "base_density for client C-0042, 4 passes" in out
    assert out.count(" completed ") == 4
    assert "Summary: 4 passes" in out and "aftercare" in out and "Keep the treated area dry" in out
    assert "[state] armed -> running" in out and "depth 0." in out
    # What it wrote, and only under the data directory.
    assert {"calibrations.sqlite", "passlog.sqlite"} <= {p.name for p in tmp_path.iterdir()}
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.session_id in out
        passes = log.passes(session.session_id)
        assert [p.outcome for p in passes] == ["completed"] * 4
        assert log.verify() is None
    (calibration,) = CalibrationStore(tmp_path / "calibrations.sqlite").list()
    assert calibration.calibration_id in out

    # A second run reuses the stored calibration of the same pen.
    assert _load_example().main(["--simulator", "--quick"]) == 0
    out = capsys.readouterr().out
    assert f"Calibration {calibration.calibration_id} from the store" in out
    assert out.count(" completed ") == 4


def test_integration_doc_shows_the_example_as_it_is():
    doc = (ROOT / "docs" / "integration.md").read_text()
    block = doc.split("## A complete example", 1)[1].split("```python\n", 1)[1].rsplit("```", 1)[0]
    assert block == EXAMPLE.read_text(), "docs/integration.md: paste examples/session_software.py"


def test_the_example_never_simulates_unless_asked(tmp_path, monkeypatch, capsys):
    # The program as `python examples/session_software.py --quick` runs it (its `__main__`
    # part and exit status), in this process: a process cost 0.4 CPU-s of imports. The page's
    # own command (test_docs.py) still runs it as a program.
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--quick"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert ended.value.code == 2 and "no pen chosen" in capsys.readouterr().err
    assert not (tmp_path / "passlog.sqlite").exists()


def test_the_example_agrees_with_smp_run_on_an_aborted_session(tmp_path, monkeypatch, capsys):
    """A fault mid-pass: the same outcome, INCOMPLETE text and exit code as `smp run`. The pen
    is on the clock the example's controller drives, jammed at the first step with the needle
    running (on the wall clock a loaded machine could stall the pass past its pen's lease)."""
    from simulators import PenSimulator, VirtualClock
    from smpdevice.control.calibration import Calibration
    from smpdevice.outcomes import ExitCode
    from tests.smpdevice.cli.test_cli_run import on_pen_time

    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    with PenSimulator(seed=0, name="example-fault", clock=VirtualClock(host_driven=True)) as sim:
        CalibrationStore(tmp_path / "calibrations.sqlite").save(Calibration.linear(
            pen_serial=sim.serial, technician="t", offset_mm=-sim.model.offset_mm,
            gain=sim.model.gain,
            **fit_points(-sim.model.offset_mm, sim.model.gain)))

        def jam_when_running(_now_s: float) -> bool:
            if sim.firmware.state.name != "RUNNING":
                return False
            sim.inject("jam")
            return True

        on_pen_time(sim, jam_when_running)
        code = _load_example().main(["--port", sim.url])
    out = capsys.readouterr().out
    assert code == ExitCode.FAULT == 4
    assert "INCOMPLETE: ended by a fault" in out and "0 of 4 planned passes completed" in out
    assert f"smp clear --port {sim.url}" in out and "SESSION INCOMPLETE" in out
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.summary["outcome"] == "fault"
