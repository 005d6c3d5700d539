"""Stopping the service never waits on a socket that never finished its opening handshake (a
browser's spare connection, a port scanner, a client that hung mid-request): its close cut the
service's own clients after CLOSE_TIMEOUT_S but left those, and websockets waits for each up
to its open timeout (seen in the console tests: 0.6-1.8 s at one stop in six). The pen is at
rest before any of this: it is the stop of `smp serve` that was held."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from smpdevice.service import server as server_module
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration


def test_a_silent_socket_does_not_hold_the_stop(sim, data_dir, monkeypatch):
    monkeypatch.setattr(server_module, "OPEN_TIMEOUT_S", 120.0)  # websockets' own wait
    monkeypatch.setattr(server_module, "CLOSE_TIMEOUT_S", 0.2)
    handle = ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, calibration=true_calibration(sim)))
    parts = urlsplit(handle.url)
    silent = socket.create_connection((parts.hostname, parts.port))
    silent.sendall(b"GET /rpc HTTP/1.1\r\n")  # a request begun, never ended
    try:
        began = time.monotonic()
        handle.stop()  # joins the service's thread for at most 30 s
        stopped = not handle._thread.is_alive()
        silent.settimeout(30)
        eof = silent.recv(1) == b""
    finally:
        silent.close()
    assert stopped, f"the service was still stopping after {time.monotonic() - began:.0f} s"
    assert eof, "the silent socket was left open"
