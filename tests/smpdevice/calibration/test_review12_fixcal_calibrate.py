"""Review 12 (REVF-2, -3, -5, -8, -11; REVD-8): `smp calibrate` and the calibration model.

- A run whose gauge readings make no calibration (0 mm even at full travel, flush too close to
  full travel) is a failed run: report printed, nothing saved, exit 1 (was exit 2, no report).
- `--verify-only` refusing a future-dated calibration prints this run's command (was
  `--port PORT`); `run_verify` names the pen's port.
- A bound too tight to count in the longest spin never advises "spin longer".
- The command to run a failed run again is guided when the run was (was `--auto` on pensim://).
- A gauge bridge's over-long answer is one short line, read bounded.
- A calibration valid more than 366 days is refused by the model, also read back from a store.
The pen is the built-in simulator on virtual time; the gauges are real sockets."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from simulators.pen_model import PenModel
from smpdevice.calibration.accuracy import PunctureRateCheck, RatePoint
from smpdevice.calibration.gauges import GaugeError, GaugeRequest, TcpGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError
from smpdevice.calibration.verify import run_verify
from smpdevice.calibration.workflow import run_calibration
from smpdevice.cli import main
from smpdevice.cli.calibrate import calibrate_again
from smpdevice.control import PenController, State
from smpdevice.control.calibration import VALIDITY_MAX_DAYS, Calibration, CalibrationError
from smpdevice.outcomes import ExitCode
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.virtual_time import virtual_sim


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    return tmp_path


def smp(*args: object, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def nothing_saved(data) -> bool:
    path = data / "calibrations.sqlite"
    return not path.exists() or not CalibrationStore(path).list()


# ---- REVF-2 and REVF-8: a failed guided run, its report, exit 1 and a guided command again

def test_a_gauge_reading_0_at_full_travel_is_a_failed_run_reported_exit_1(data):
    result = smp("calibrate", "--port", "pensim://", "-t", "ana", "--spin-seconds", "0.3",
                 input="0\n" * 8)
    assert "Result: FAIL; nothing was saved" in result.output, result.output[-600:]
    assert "the gauge reads 0 mm even at full travel" in result.output
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output[-400:]
    assert nothing_saved(data)
    again = result.output.split("run again: ", 1)[1].splitlines()[0]
    assert again == "smp calibrate --port pensim:// -t ana --spin-seconds 0.3", again


class FlushNearFullTravel:
    """A gauge on a pen whose tip comes out only 0.05 mm before full travel (2.5 mm): it reads
    what the needle would show at the actuator position the run asks about."""

    manual = False
    description = "a gauge on a pen that is flush at actuator 2.45 mm"

    def read_mm(self, request: GaugeRequest) -> float:
        return round(max(0.0, request.actuator_mm - 2.45), 3)

    def close(self) -> None:
        pass


def test_a_pen_flush_too_close_to_full_travel_is_a_failed_run_not_an_error(tmp_path):
    store = CalibrationStore(tmp_path / "cal.sqlite")
    with virtual_sim(seed=3) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report = run_calibration(ctl, FlushNearFullTravel(), technician="qa", store=store,
                                 settings=CalibrationSettings(spin_duration_s=0.2))
        assert ctl.state is State.IDLE
    assert not report.passed and report.calibration is None and not report.saved
    assert any("too close to full travel" in p for p in report.problems), report.problems
    assert store.list() == []


@pytest.mark.parametrize(("port", "auto", "expected"), [
    ("pensim://", False, "smp calibrate --port pensim:// -t ana"),
    ("pensim://", True, "smp calibrate --port pensim:// --auto -t ana"),
    ("pensim://?seed=3", False, "smp calibrate --port 'pensim://?seed=3' -t ana"),
    ("socket://127.0.0.1:7000", True,
     "smp calibrate --port socket://127.0.0.1:7000 --auto --gauge tcp://127.0.0.1:7001 -t ana"),
])
def test_the_command_to_run_again_runs_the_same_way(port, auto, expected):
    gauge = "tcp://127.0.0.1:7001" if port.startswith("socket") else None
    assert calibrate_again(port, auto=auto, gauge_url=gauge, db=None, technician="ana") \
        == expected


# ---- REVF-3: a future-dated calibration, refused with a command to copy

def store_true_calibration(data, *, created_in_min: float) -> None:
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        created_at=datetime.now(UTC) + timedelta(minutes=created_in_min), simulated=True,
        **fit_points(-model.offset_mm, model.gain)))


def test_verify_only_refuses_a_future_dated_calibration_with_this_runs_command(data):
    store_true_calibration(data, created_in_min=120)
    result = smp("calibrate", "--verify-only", "--port", "pensim://", "--auto", "-t", "ana")
    assert result.exit_code == ExitCode.USER_ERROR
    assert "after this computer's clock" in result.output
    assert result.output.rstrip().endswith(
        "recalibrate: smp calibrate --port pensim:// --auto -t ana"), result.output[-300:]


def test_run_verify_names_the_pens_port_for_a_future_dated_calibration():
    with virtual_sim(seed=3) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ahead = Calibration.linear(pen_serial=sim.serial, technician="t",
                                   offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
                                   created_at=datetime.now(UTC) + timedelta(hours=2),
                                   **fit_points(-sim.model.offset_mm, sim.model.gain))
        with pytest.raises(CalibrationError) as refused:
            run_verify(ctl, None, ahead)  # type: ignore[arg-type]  # refused before reading
    assert f"recalibrate: smp calibrate --port {sim.url}" in str(refused.value)
    assert "--port PORT" not in str(refused.value)


# ---- REVF-5: what helps against a bound too tight to count

def test_a_bound_no_spin_can_resolve_advises_the_default_bound_not_a_longer_spin():
    tight = RatePoint(52.0, 52.0, 9.99, 519)  # the longest spin, at a 0.1 % bound
    (problem,) = PunctureRateCheck((tight,), 0.1).problems()
    assert "spin longer" not in problem and "--spin-seconds" not in problem, problem
    assert "use the default --speed-tolerance-pct (3 %)" in problem, problem


def test_a_bound_a_longer_spin_can_resolve_still_advises_it():
    short = RatePoint(50.0, 50.0, 0.2, 10)  # 0.2 s at 3 %: 0.7 s would do
    (problem,) = PunctureRateCheck((short,), 3.0).problems()
    assert "spin longer (--spin-seconds)" in problem, problem


# ---- REVF-11: a gauge bridge's over-long answer

def gauge_bridge(*answers: bytes) -> Iterator[int]:
    """A gauge bridge answering each READ with the next of `answers` (the last one again),
    one connection after another."""
    server = socket.create_server(("127.0.0.1", 0))
    sent = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                try:
                    while f.readline():
                        sent[0] += 1  # counted when asked: a write cut short is answered too
                        f.write(answers[min(sent[0] - 1, len(answers) - 1)])
                        f.flush()
                except OSError:
                    continue

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


REQUEST = GaugeRequest(label="Depth point 1", actuator_mm=1.0)


def test_an_over_long_answer_is_one_short_error_and_the_next_reading_works():
    bridge = gauge_bridge(b"1" * 5_000_000 + b"\n", b"0.5234\n")
    gauge = TcpGauge(f"tcp://127.0.0.1:{next(bridge)}")
    try:
        with pytest.raises(GaugeError) as refused:
            gauge.read_mm(REQUEST)
        message = str(refused.value)
        assert "not a reading" in message and "\n" not in message
        assert len(message) < 300, len(message)
        assert gauge.read_mm(REQUEST) == pytest.approx(0.5234)  # a fresh connection
    finally:
        gauge.close()
        bridge.close()


def test_a_short_answer_that_is_not_a_reading_is_shown_as_it_was():
    bridge = gauge_bridge(b"abc\n")
    gauge = TcpGauge(f"tcp://127.0.0.1:{next(bridge)}")
    try:
        with pytest.raises(GaugeError, match="answered 'abc', not a reading"):
            gauge.read_mm(REQUEST)
    finally:
        gauge.close()
        bridge.close()


# ---- REVD-8: the validity cap holds in the model, also for a stored row

def test_the_model_refuses_more_than_the_longest_validity():
    made = datetime(2026, 11, 1, tzinfo=UTC)
    fields = dict(pen_serial="SMP-1", technician="t", offset_mm=-0.3, gain=1.0, created_at=made)
    Calibration(**fields, expires_at=made + timedelta(days=VALIDITY_MAX_DAYS))  # the cap: kept
    with pytest.raises(CalibrationError, match=f"at most {VALIDITY_MAX_DAYS} days"):
        Calibration(**fields, expires_at=made + timedelta(days=VALIDITY_MAX_DAYS, seconds=1))


def test_a_stored_calibration_claiming_73_years_is_damaged_not_used(tmp_path):
    path = tmp_path / "cal.sqlite"
    store = CalibrationStore(path)
    store.save(Calibration.linear(pen_serial="SMP-1", technician="t", offset_mm=-0.3, gain=1.0,
                                  **fit_points(-0.3, 1.0)))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE calibrations SET expires_at = '2099-01-01T00:00:00Z', record_json = "
                   "json_set(record_json, '$.expires_at', '2099-01-01T00:00:00Z')")
    db.close()
    with pytest.raises(CalibrationStoreError, match="is damaged .*Recalibrate the pen"):
        CalibrationStore(path).latest_valid("SMP-1")
