"""Review 15 S3: every ending of a guided `smp calibrate --service URL` is one line with the
documented exit, never a traceback.

docs/technicians.md: a failed or aborted run exits "1 with one line when no reading can be
typed, standard input being closed or at its end". Through the service it ended in
`AttributeError: 'RemotePen' object has no attribute 'state'` (workflow's `pen_lost` read the
controller's state, which a `RemotePen` did not have): with standard input at its end, after
`abc` then its end, and with a `--gauge tcp://` answering `nan`, closing or silent. A pen that
latches an E-stop mid-run ends it with its report and the clear that reaches the served pen.
A real service on a virtual-time simulated pen, the command in-process (`shell.smp`)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
            "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml"),
            "COLUMNS": "200"}


@pytest.fixture
def service(env) -> Iterator[ServiceHandle]:
    with ServiceHandle(ServiceOptions(port="pensim://?clock=virtual", listen="127.0.0.1:0",
                                      data_dir=Path(env["SMP_DATA_DIR"]))) as handle:
        yield handle


@pytest.fixture
def tcp_gauge() -> Iterator[Callable[[Callable[[int], bytes | None]], str]]:
    """A gauge on a TCP port answering READ number n with `answer(n)` (None: close)."""
    servers: list[socket.socket] = []

    def start(answer: Callable[[int], bytes | None]) -> str:
        srv = socket.create_server(("127.0.0.1", 0))
        servers.append(srv)

        def serve() -> None:
            with contextlib.suppress(OSError):  # closed at the test's end
                conn, _ = srv.accept()
                with conn:
                    for n, _line in enumerate(conn.makefile("rb")):
                        reply = answer(n)
                        if reply is None:
                            return
                        conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


def one_line_exit_1(cal, *words: str) -> str:
    assert "Traceback" not in cal.stderr and "AttributeError" not in cal.stderr, cal.stderr
    assert cal.returncode == 1, cal.stderr
    errors = [line for line in cal.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, cal.stderr
    for word in words:
        assert word in errors[0], cal.stderr
    return errors[0]


@pytest.mark.parametrize("typed", ["", "abc\n", "0.96\n"], ids=["eof", "abc-eof", "one-eof"])
def test_guided_calibration_through_service_whose_input_ends_is_one_line(service, env, typed):
    cal = shell.smp(("calibrate", "--service", service.url, "-t", "ana"), env=env, cwd=ROOT,
                    input=typed)
    line = one_line_exit_1(cal)
    assert "standard input" in line, line


@pytest.mark.parametrize("answer", [lambda n: b"nan\n", lambda n: None],
                         ids=["nan", "closed"])
def test_guided_calibration_through_service_with_a_broken_gauge_is_one_line(
        service, env, tcp_gauge, answer):
    gauge = tcp_gauge(answer)
    cal = shell.smp(("calibrate", "--service", service.url, "-t", "ana", "--gauge", gauge),
                    env=env, cwd=ROOT)
    line = one_line_exit_1(cal, "Nothing was saved")
    assert f"smp calibrate --service {service.url} --gauge {gauge} -t ana" in line, line


def test_a_pen_latched_mid_run_through_service_names_the_service_clear(service, env,
                                                                        tcp_gauge):
    def answer(n: int) -> bytes:
        if n == 1:  # while the technician reads the second zero reading
            service.pen.estop()
        return b"0.96\n" if n == 0 else b"0.15\n"

    cal = shell.smp(("calibrate", "--service", service.url, "-t", "ana", "--gauge",
                     tcp_gauge(answer)), env=env, cwd=ROOT)
    assert "stopped: E-stop requested by the host" in cal.stdout, cal.stdout
    line = one_line_exit_1(cal, f"smp clear --service {service.url}")
    assert "--port" not in line, line
