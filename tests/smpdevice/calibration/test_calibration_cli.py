"""`smp calibrate` and `smp calibrations list`, driven through their prompts with CliRunner.

The technician is played by `LiveInput`: each answer is typed when click asks for it, and an
answer may be a function that reads the simulated pen's gauge at that moment, as a person
looking at a dial gauge would.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from simulators import GaugeServer, PenSimulator, VirtualClock
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main

SEED = 3  # zero search takes 3 readings on this pen (see test_calibration_fit)
FAST = ["--spin-seconds", "0.2"]


class LiveInput(io.RawIOBase):
    """stdin whose lines are produced one at a time, when the program reads them."""

    def __init__(self, answers: list[str | Callable[[], str]]) -> None:
        self.answers = list(answers)
        self.typed: list[str] = []

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if len(buffer) == 0 or not self.answers:
            return 0
        answer = self.answers.pop(0)
        text = answer() if callable(answer) else answer
        self.typed.append(text)
        data = (text + "\n").encode()
        buffer[: len(data)] = data
        return len(data)


@pytest.fixture
def sim():
    """The pen on virtual time, driven by the `smp` that connects to it (docs/simulator.md):
    its moves and speed checks take no wall time; while a prompt waits for the technician its
    clock moves at the wall's pace, as a pen's does, and a reading is where the pen then is."""
    with PenSimulator(seed=SEED, clock=VirtualClock(host_driven=True)) as s:
        yield s


def reading(sim: PenSimulator, factor: float = 1.0) -> Callable[[], str]:
    return lambda: f"{sim.gauge.read_mm() * factor:.3f}"


def run(args: list[str], stdin=None):
    return CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)


def test_guided_run_checks_entries_redoes_a_point_and_saves(sim, tmp_path):
    g = reading(sim)
    answers = [
        g, g, g,  # zero search
        g,  # depth 1
        "abc",  # depth 2: not a number
        "r",  # ... redo depth 1 instead
        g,  # depth 1 again
        reading(sim, 10),  # depth 2: a slipped decimal point
        g,  # depth 2
        "0",  # depth 3: the tip cannot be inside here
        "0.3",  # depth 3: below depth 2
        g, g, g, g,  # depth 3..6
        g, g, g,  # verify
    ]
    stdin = LiveInput(answers)
    db = tmp_path / "c.sqlite"
    result = run(["calibrate", "--port", sim.url, "--technician", "ana", "--db", str(db), *FAST],
                 stdin)
    out = result.output
    assert result.exit_code == 0, out
    assert stdin.answers == []  # every answer was asked for, no more
    assert "Depth point 2 of 6: the actuator is at" in out
    assert "refused: 'abc' is not a number. Enter the gauge reading in mm" in out
    assert "redoing depth point 1" in out
    assert "is about 10x the expected" in out and "Did you mean" in out
    assert "means the tip is still inside the cartridge" in out
    assert "reading 0.300 mm at actuator" in out and "is not above the previous point" in out
    assert "Result: PASS" in out and f"Saved to {db}" in out
    assert "Needle penetration depth accuracy (N = 3 check readings" in out  # a person reads 3
    assert "Puncture rate accuracy (punctures the pen counted per second; bound 3 %)" in out
    cal = CalibrationStore(db).latest(sim.serial)
    assert cal is not None and cal.technician == "ana"
    assert [c for c, _ in cal.depth_checks] == [0.5, 1.0, 1.5] and len(cal.rate_checks) == 3
    assert len(cal.points) == 6
    assert cal.offset_mm == pytest.approx(-sim.model.offset_mm, abs=0.02)
    assert cal.gain == pytest.approx(sim.model.gain, abs=0.01)


def test_guided_run_asks_again_for_the_point_a_fit_refuses(sim, tmp_path):
    g = reading(sim)

    def off() -> str:  # a misread that is monotonic and not a typo, only off the line
        return f"{sim.gauge.read_mm() + 0.05:.3f}"

    answers = [g, g, g, g, g, g, off, g, g,  # zero, depth 1..6 (4 misread)
               g,  # point 4 again, when the fit names it
               g, g, g]  # verify
    stdin = LiveInput(answers)
    db = tmp_path / "c.sqlite"
    result = run(["calibrate", "--port", sim.url, "-t", "ana", "--db", str(db), "--spin-seconds",
                  "0.1"], stdin)
    assert result.exit_code == 0, result.output
    assert stdin.answers == []
    assert "point 4 (actuator" in result.output and "off the fitted line" in result.output
    assert "Redo depth point 4: the actuator is at" in result.output
    cal = CalibrationStore(db).latest(sim.serial)
    assert max(abs(r) for r in cal.residuals_mm) < 0.002


def test_guided_run_aborts_without_saving(sim, tmp_path):
    g = reading(sim)
    db = tmp_path / "c.sqlite"
    result = run(["calibrate", "--port", sim.url, "-t", "ana", "--db", str(db), *FAST],
                 LiveInput([g, g, g, g, g, "q"]))
    assert result.exit_code == 1
    assert "Result: ABORTED by the technician; nothing was saved." in result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: calibration aborted by the technician; nothing was saved.")
    assert CalibrationStore(db).list() == []


def test_guided_run_asks_the_tachometer_and_flags_a_slow_pen(sim, tmp_path):
    g = reading(sim)
    db = tmp_path / "c.sqlite"
    answers = [g, g, g, g, g, g, g, g, g,  # zero and depth
               "", "100", "150",  # tachometer: skipped, then 105 Hz reads 100 (-4.8 %)
               g, g, g]
    result = run(["calibrate", "--port", sim.url, "-t", "ana", "--db", str(db), "--tachometer",
                  *FAST], LiveInput(answers))
    assert result.exit_code == 1  # a check said no (README's exit table), as an abort does
    assert "speed 105 Hz: tachometer error -4.8 % exceeds 3 %" in result.output
    assert "Result: FAIL; nothing was saved" in result.output
    assert CalibrationStore(db).list() == []


def test_auto_over_a_tcp_gauge_then_list_and_verify(sim, tmp_path):
    server = GaugeServer(sim.gauge)
    host, port = server.address
    db = ["--db", str(tmp_path / "c.sqlite")]
    gauge = ["--gauge", f"tcp://{host}:{port}"]
    try:
        result = run(["calibrate", "--auto", "--port", sim.url, *gauge, *db, *FAST])
        assert result.exit_code == 0, result.output
        assert "gauge at tcp://" in result.output and "Result: PASS" in result.output

        listed = run(["calibrations", "list", "--pen", sim.serial, *db])
        assert listed.exit_code == 0
        rows = listed.output.strip().splitlines()
        assert len(rows) == 2 and sim.serial in rows[1] and "valid" in rows[1]
        assert " auto " in rows[1]

        verified = run(["calibrate", "--verify-only", "--port", sim.url, *gauge, *db])
        assert verified.exit_code == 0, verified.output
        assert "verify: PASS" in verified.output
    finally:
        server.close()


def test_errors_are_one_line_and_non_zero(sim, tmp_path):
    db = ["--db", str(tmp_path / "c.sqlite")]
    result = run(["calibrate", "--verify-only", "--port", sim.url, "--auto", *db])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(
        f"error: pen {sim.serial} has no calibration. Calibrate it first")

    result = run(["calibrate", "--auto", "--port", "socket://127.0.0.1:9", *db])
    assert result.exit_code == 2
    assert "pass --gauge tcp://HOST:PORT" in result.output

    result = run(["calibrations", "list", "--db", str(tmp_path / "nope" / "c.sqlite")])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Traceback" not in result.output

    assert "No calibrations for any pen" in run(["calibrations", "list", *db]).output


@pytest.mark.parametrize("args", [["calibrate"], ["calibrations"], ["calibrations", "list"]])
def test_help_teaches_with_an_example(args):
    result = run([*args, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "smp calibrat" in result.output
