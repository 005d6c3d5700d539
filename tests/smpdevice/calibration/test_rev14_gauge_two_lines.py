"""Review 14 (cli): a gauge bridge that answered one READ with two lines shifted every later
reading by one point: the second line was read as the answer to the next READ, and the fit was
made of stale readings. Data the gauge sent unasked now stops the reading with one line."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from smpdevice.calibration.gauges import GaugeError, GaugeRequest, TcpGauge

REQ = GaugeRequest(label="point 1", actuator_mm=1.0)


@pytest.fixture
def bridge() -> Iterator[tuple[str, list[bytes]]]:
    """A gauge bridge (the device outside the project): it answers each READ with the next
    of `answers`, as given (one line, or a broken two)."""
    answers: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                if line.strip() == b"READ" and answers:
                    conn.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", answers
    server.close()


def test_one_line_per_read_is_read_as_before(bridge):
    url, answers = bridge
    answers += [b"0.512\n", b"0.733\n"]
    gauge = TcpGauge(url)
    try:
        assert [gauge.read_mm(REQ), gauge.read_mm(REQ)] == [0.512, 0.733]
    finally:
        gauge.close()


def test_a_second_line_for_one_read_is_never_taken_for_the_next_reading(bridge):
    url, answers = bridge
    answers += [b"0.512\n0.512\n", b"0.733\n"]
    gauge = TcpGauge(url)
    try:
        assert gauge.read_mm(REQ) == 0.512
        with pytest.raises(GaugeError, match="without being asked"):
            gauge.read_mm(REQ)  # it read 0.512 again, the answer to the READ before
    finally:
        gauge.close()


@pytest.mark.parametrize("answer", [b"abc\n", b"0.512\n0.512\n"])
def test_a_gauge_failing_mid_run_is_an_aborted_calibration_exit_1(bridge, tmp_path, monkeypatch,
                                                                  answer):
    """README: exit 1 for a failed or aborted calibration (it exited 2, as a bad option)."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    url, answers = bridge
    answers += [answer] * 40
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    ran = CliRunner().invoke(main, ["calibrate", "--port", "pensim://?clock=virtual", "--gauge",
                                    url, "-t", "ana"])
    assert ran.exit_code == 1, ran.output
    assert "Nothing was saved" in ran.output and "run again: smp calibrate" in ran.output, \
        ran.output
