"""Review 19 QA: `smp sim`'s gauge, a client that goes away mid-answer (a reset after many
READs) prints no traceback and the gauge keeps answering; a line longer than any command is
refused in one line and the client hung up on (never buffered without end)."""

import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

from simulators.gauge import MAX_LINE_BYTES, Gauge, GaugeServer

SMP = Path(sys.executable).with_name("smp")


def _gauge_port(proc: subprocess.Popen) -> int:
    assert proc.stdout is not None
    proc.stdout.readline()  # the pen's port
    gauge_line = proc.stdout.readline()  # gauge: tcp://127.0.0.1:PORT (send READ)
    return int(gauge_line.split("127.0.0.1:")[1].split()[0])


def _read(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"READ\n")
        return sock.makefile("rb").readline()


def test_smp_sim_gauge_client_reset_prints_no_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SMP_DATA_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([str(SMP), "sim", "--tcp", "0", "--seed", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _gauge_port(proc)
        for _ in range(3):  # many READs, then a reset: the answers meet a closed socket
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"READ\n" * 20000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        reply = _read(port)
        assert reply.strip(), "the gauge still answers"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err[:1500]


def test_gauge_refuses_an_endless_line_and_keeps_serving(capfd):
    server = GaugeServer(Gauge(lambda: 0.5))
    try:
        port = server.address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"X" * (MAX_LINE_BYTES * 100))  # no newline, ever
            replies = sock.makefile("rb")
            assert replies.readline().startswith(b"ERR line longer than")
            assert replies.readline() == b"", "the gauge hangs up on it"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"READ\n" + b"x" * (MAX_LINE_BYTES - 1) + b"\n")  # 64 bytes: a line
            replies = sock.makefile("rb")
            assert replies.readline() == b"0.5000\n"
            assert replies.readline() == b"ERR unknown command, send READ\n"
    finally:
        server.close()
    assert "Traceback" not in capfd.readouterr().err
