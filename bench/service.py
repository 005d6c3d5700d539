"""The pen service's figures, each with a baseline from the same run (issue 14 item 8).

    .venv/bin/python bench/service.py            # about a minute; prints a markdown table

- E-stop from a browser click to the pen's confirmation: Chromium (Playwright, the system
  /usr/bin/chromium) clicks the console's E-stop; the console records the time from the click
  to the service's answer, which is sent after the pen acknowledged the ESTOP. Baseline: the
  controller's own `estop()` in-process on the same kind of simulated pen.
- setpoint RPC over loopback (WebSocket, asyncio client) vs `set_setpoints` called directly on
  the same controller, and vs `rpc.ping` (the transport's floor).
- service CPU with 5 clients subscribed to telemetry at 100 Hz vs the same service with none
  (the in-process simulated pen's own cost is in both): `smp serve` in a process of its own,
  CPU from /proc over the same wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators import PenSimulator  # noqa: E402
from smpdevice.control import PenController, State  # noqa: E402
from smpdevice.control.calibration import Calibration  # noqa: E402
from smpdevice.service.auth import Role  # noqa: E402
from smpdevice.service.client import ServiceClient  # noqa: E402
from smpdevice.service.runner import ServiceHandle, ServiceOptions  # noqa: E402

CROWN = dict(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)


def p99(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]


def stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} ms, p99 {p99(xs):.2f} ms (n={len(xs)})"


def cal(sim: PenSimulator) -> Calibration:
    return Calibration.linear(pen_serial=sim.serial, technician="bench",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain)


def controller_estop(n: int) -> list[float]:
    out = []
    with PenSimulator(seed=3) as sim, PenController.connect(sim.url, calibration=cal(sim)) as pen:
        for _ in range(n):
            t0 = time.perf_counter()
            pen.estop()
            out.append((time.perf_counter() - t0) * 1000)
            pen.clear_faults()
    return out


async def _rpc_figures(service: ServiceHandle, n: int) -> tuple[list, list, list]:
    op = await ServiceClient.connect(service.url, token=service.token(Role.OPERATOR))
    await op.drive(lease_ms=2000)
    await op.call("pen.set_zone", zone="crown")
    ping, rpc = [], []
    for i in range(n):
        t0 = time.perf_counter()
        await op.call("rpc.ping")
        ping.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await op.call("pen.set_setpoints", **{**CROWN, "depth_mm": 0.4 + (i % 10) / 100})
        rpc.append((time.perf_counter() - t0) * 1000)
    await op.release()
    await op.close()
    direct = []
    pen = service.pen
    for i in range(n):
        t0 = time.perf_counter()
        pen.set_setpoints(**{**CROWN, "depth_mm": 0.4 + (i % 10) / 100})
        direct.append((time.perf_counter() - t0) * 1000)
    return ping, rpc, direct


def browser_estop(service: ServiceHandle, n: int) -> list[float] | str:
    if not os.path.exists("/usr/bin/chromium"):
        return "skipped: /usr/bin/chromium absent"
    from playwright.sync_api import sync_playwright

    from smpdevice.service.client import SyncServiceClient

    out = []
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p, SyncServiceClient.connect(
            service.url, token=service.token(Role.TECHNICIAN), role="technician") as tech:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        page.goto(service.console_url(Role.VIEWER))
        page.wait_for_selector("#role:has-text('role:')")
        for _ in range(n):
            page.evaluate("delete document.body.dataset.estopMs")
            page.click("#estop")
            page.wait_for_selector("body[data-estop-ms]", state="attached")
            out.append(float(page.get_attribute("body", "data-estop-ms")))
            tech.call("pen.clear_faults", reason="bench")
            page.wait_for_selector("#state[data-state=idle]")
        browser.close()
    return out


def cpu_figures(seconds: float = 10.0) -> tuple[float, float]:
    """Service CPU (% of one core) with 0 and with 5 telemetry subscribers at 100 Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SMP_DATA_DIR": tmp}
        proc = subprocess.Popen([sys.executable, "-m", "smpdevice", "serve", "--port",
                                 "pensim://", "--listen", "127.0.0.1:0", "--no-socket",
                                 "--telemetry-hz", "100"], stdout=subprocess.PIPE, text=True,
                                env=env)
        try:
            url = None
            for line in proc.stdout:
                m = re.search(r"JSON-RPC:\s+(\S+)", line)
                if m:
                    url = m.group(1)
                    break
            token = json.loads(Path(tmp, "service.tokens.json").read_text())["viewer"]

            def cpu_s() -> float:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

            async def measure(clients: int) -> float:
                conns = [await ServiceClient.connect(url, token=token, role="viewer")
                         for _ in range(clients)]
                for c in conns:
                    await c.call("telemetry.subscribe", rate_hz=100)
                await asyncio.sleep(1.0)
                c0, t0 = cpu_s(), time.monotonic()
                await asyncio.sleep(seconds)
                used = (cpu_s() - c0) / (time.monotonic() - t0) * 100
                for c in conns:
                    await c.close()
                return used

            idle = asyncio.run(measure(0))
            five = asyncio.run(measure(5))
        finally:
            proc.terminate()
            proc.wait(10)
    return idle, five


def main() -> None:
    n = 200
    base_estop = controller_estop(50)
    with PenSimulator(seed=4) as sim, tempfile.TemporaryDirectory() as tmp:
        os.environ["SMP_DATA_DIR"] = tmp
        with ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=Path(tmp),
                                          calibration=cal(sim))) as service:
            ping, rpc, direct = asyncio.run(_rpc_figures(service, n))
            clicks = browser_estop(service, 30)
            assert service.pen.state is State.IDLE
    idle, five = cpu_figures()
    print("| figure | value | baseline (same run) |")
    print("|---|---|---|")
    click_text = clicks if isinstance(clicks, str) else stats(clicks)
    print(f"| E-stop, browser click -> pen confirmation | {click_text} | controller estop() "
          f"in-process: {stats(base_estop)} |")
    print(f"| setpoint RPC over loopback | {stats(rpc)} | direct set_setpoints: {stats(direct)};"
          f" rpc.ping: {stats(ping)} |")
    print(f"| service CPU, 5 clients x 100 Hz telemetry | {five:.1f} % of a core | no client: "
          f"{idle:.1f} % (simulated pen in the same process) |")


if __name__ == "__main__":
    main()
