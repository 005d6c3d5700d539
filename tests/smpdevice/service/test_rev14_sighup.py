"""Review 14 (svc): `smp serve` closed by its terminal (SIGHUP) died on the spot: no close, so
the needle it was driving was left to the pen's own lease (which latches LEASE_EXPIRED) instead
of being stopped and disarmed as on Ctrl-C or SIGTERM, and service.sock was left behind
(docs/service.md "When `smp serve` stops ...: the close brings the pen to rest first"; README:
SIGHUP, "the terminal closed", is taken as Ctrl-C by `smp run` and `smp demo`). `smp demo
--web` died the same way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_protocol.codes import FirmwareState
from simulators import PenSimulator
from simulators.reach import TcpBridge
from smpdevice.calibration.store import CalibrationStore
from smpdevice.service.client import ServiceClient
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import WAIT_S, drive_needle

SMP = str(Path(sys.executable).with_name("smp"))
# Wall-clock pens in two processes: this process's pen over TCP to an `smp serve` child (its
# 500 ms lease, its requests' four tries), and `smp demo --web`'s own pen (the other demo --web
# tests run there too). The realtime pass keeps a busy machine from starving them.
pytestmark = pytest.mark.realtime


def _wait(predicate, timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _url(proc: subprocess.Popen) -> str:
    seen = []
    for line in proc.stdout:  # type: ignore[union-attr]
        seen.append(line)
        if "JSON-RPC:" in line:
            return line.split()[1] if line.startswith("JSON-RPC:") else line.split()[-1]
    raise AssertionError("the service did not start: " + "".join(seen))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_serve_brings_the_pen_to_rest_when_its_terminal_closes(tmp_path, monkeypatch, signum):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data_dir))
    env = dict(os.environ, SMP_DATA_DIR=str(data_dir))
    with PenSimulator(seed=5) as sim:
        bridge = TcpBridge(sim)
        try:
            CalibrationStore().save(true_calibration(sim))  # the service's own store
            proc = subprocess.Popen([SMP, "serve", "--port", bridge.url, "--listen",
                                     "127.0.0.1:0", "--lease-ms", "2000"],  # SERVED_PEN's:
                                    # a service starved 500 ms at its close let a 500 ms lease
                                    # lapse (FAULT): what is tested is the stop, within a lease
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            try:
                url = _url(proc)
                assert (data_dir / "service.sock").exists()

                async def drive() -> None:
                    token = json.loads((data_dir / "service.tokens.json").read_text())
                    client = await ServiceClient.connect(url, token=token["operator"],
                                                         role="operator")
                    await drive_needle(client, lease_ms=5000)
                    proc.send_signal(signum)  # the terminal closed, mid-needle
                    await asyncio.to_thread(proc.wait, WAIT_S)

                asyncio.run(drive())
                assert _wait(lambda: sim.firmware.state is not FirmwareState.RUNNING)
                # the close stops and disarms; a pen left to its lease latches a fault
                assert sim.firmware.state is FirmwareState.IDLE, sim.firmware.state
                assert proc.returncode == 0
                assert not (data_dir / "service.sock").exists(), "service.sock left behind"
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        finally:
            bridge.close()


def test_demo_web_closes_on_sighup(tmp_path):
    env = dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([SMP, "demo", "--web", "--listen", "127.0.0.1:0", "--no-browser"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _url(proc)
        proc.send_signal(signal.SIGHUP)
        out, _ = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out  # not killed by the signal (-1)
    assert "stopped." in out, out
