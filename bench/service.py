"""The pen service's figures, each with a baseline from the same run (issue 14 item 8).

    .venv/bin/python bench/service.py            # 3 runs, about 3 minutes; a markdown table
    .venv/bin/python bench/service.py --runs 1

- E-stop from a browser click to the pen's confirmation: Chromium (Playwright, the system
  /usr/bin/chromium) clicks the console's E-stop; the console records the time from the click
  to the service's answer, which is sent after the pen acknowledged the ESTOP. Baselines: the
  controller's own `estop()` in-process on the same kind of simulated pen; the same browser's
  round trip of a raw WebSocket echo (a bare page, a bare echo server) and of `rpc.ping` from
  the console page (the browser's and the transport's floor).
- setpoint RPC over loopback (WebSocket, asyncio client) vs `set_setpoints` called directly on
  the same controller, and vs `rpc.ping` (the transport's floor).
- service CPU with 5 clients subscribed to telemetry at 100 Hz vs the same service with none
  (the in-process simulated pen's own cost is in both): `smp serve` in a process of its own,
  CPU from /proc over the same wall time.

Each figure is the median over the runs of each run's median and p99 (the machine is shared:
the load average is printed with them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators import PenSimulator  # noqa: E402
from smpdevice.control import PenController, State  # noqa: E402
from smpdevice.control.calibration import Calibration  # noqa: E402
from smpdevice.service.auth import Role  # noqa: E402
from smpdevice.service.client import ServiceClient  # noqa: E402
from smpdevice.service.runner import ServiceHandle, ServiceOptions  # noqa: E402

CROWN = dict(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)
# The E-stops and clears log warnings with frame histories: rendering them is not the figure.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


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


ECHO_JS = """async ([url, n]) => {
  const ws = new WebSocket(url);
  await new Promise((ok, bad) => { ws.onopen = ok; ws.onerror = bad; });
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise((ok) => { ws.onmessage = ok; ws.send('{"jsonrpc":"2.0","id":1}'); });
    out.push(performance.now() - t);
  }
  ws.close();
  return out;
}"""
PING_JS = """async (n) => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now(); await call("rpc.ping"); out.push(performance.now() - t);
  }
  return out;
}"""


class EchoServer:
    """A bare WebSocket echo server on a loop thread of its own (the browser's baseline)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),),
                                       daemon=True)
        self.thread.start()
        self.ready.wait(10)

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        async def echo(ws) -> None:
            async for message in ws:
                await ws.send(message)

        self._stop = asyncio.Event()
        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self._stop.wait()

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


def browser_figures(service: ServiceHandle, n: int) -> dict[str, list[float]] | str:
    """E-stop clicks, and the same browser's raw echo and rpc.ping round trips."""
    if not os.path.exists("/usr/bin/chromium"):
        return "skipped: /usr/bin/chromium absent"
    from playwright.sync_api import sync_playwright

    from smpdevice.service.client import SyncServiceClient

    out: list[float] = []
    echo_server = EchoServer()
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p, SyncServiceClient.connect(
            service.url, token=service.token(Role.TECHNICIAN), role="technician") as tech:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        bare = browser.new_page()  # about:blank: no CSP, no console script
        echo = bare.evaluate(ECHO_JS, [f"ws://127.0.0.1:{echo_server.port}", 100])
        bare.close()
        echo_server.close()
        page = browser.new_page()
        page.goto(service.console_url(Role.VIEWER))
        page.wait_for_selector("#role:has-text('role:')")
        ping = page.evaluate(PING_JS, 100)
        for _ in range(n):
            page.evaluate("delete document.body.dataset.estopMs")
            page.click("#estop")
            page.wait_for_selector("body[data-estop-ms]", state="attached")
            out.append(float(page.get_attribute("body", "data-estop-ms")))
            page.wait_for_timeout(100)  # a clear right after an E-stop can be re-latched
            for _attempt in range(5):
                if service.pen.state is State.ESTOP:  # again, if a late event re-latched it
                    tech.call("pen.clear_faults", reason="bench")
                ends = time.monotonic() + 5
                while service.pen.state is not State.IDLE and time.monotonic() < ends:
                    time.sleep(0.01)
            page.wait_for_selector("#state[data-state=idle]")
        browser.close()
    return {"click": out, "echo": echo, "ping_browser": ping}


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


def one_run() -> dict[str, list[float] | str]:
    figures: dict[str, list[float] | str] = {"base_estop": controller_estop(50)}
    n = 200
    with PenSimulator(seed=4) as sim, tempfile.TemporaryDirectory() as tmp:
        os.environ["SMP_DATA_DIR"] = tmp
        with ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=Path(tmp),
                                          calibration=cal(sim))) as service:
            figures["ping"], figures["rpc"], figures["direct"] = asyncio.run(
                _rpc_figures(service, n))
            browser = browser_figures(service, 30)
            if isinstance(browser, str):
                figures["click"] = browser
            else:
                figures.update(browser)
            assert service.pen.state is State.IDLE
    return figures


def combined(runs: list[dict[str, list[float] | str]], key: str) -> str:
    """The median over runs of each run's median and p99."""
    values = [r[key] for r in runs if key in r]
    if not values or isinstance(values[0], str):
        return str(values[0]) if values else "not measured"
    lists = [v for v in values if isinstance(v, list)]
    med = statistics.median(statistics.median(v) for v in lists)
    high = statistics.median(p99(v) for v in lists)
    return f"median {med:.2f} ms, p99 {high:.2f} ms (runs={len(lists)}, n={len(lists[0])} each)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU figures")
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    runs = []
    for i in range(args.runs):
        runs.append(one_run())
        loads.append(os.getloadavg()[0])
        print(f"run {i + 1}: E-stop click {combined(runs[-1:], 'click')}; setpoint RPC "
              f"{combined(runs[-1:], 'rpc')}; load {loads[-1]:.1f}", file=sys.stderr)
    cpu = None if args.no_cpu else cpu_figures()
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}")
    print("| figure | value | baseline (same run) |")
    print("|---|---|---|")
    print(f"| E-stop, browser click -> pen confirmation | {combined(runs, 'click')} | controller "
          f"estop() in-process: {combined(runs, 'base_estop')}; browser raw WebSocket echo: "
          f"{combined(runs, 'echo')}; browser rpc.ping: {combined(runs, 'ping_browser')} |")
    print(f"| setpoint RPC over loopback | {combined(runs, 'rpc')} | direct set_setpoints: "
          f"{combined(runs, 'direct')}; rpc.ping: {combined(runs, 'ping')} |")
    if cpu is not None:
        idle, five = cpu
        print(f"| service CPU, 5 clients x 100 Hz telemetry | {five:.1f} % of a core | no "
              f"client: {idle:.1f} % (simulated pen in the same process) |")


if __name__ == "__main__":
    main()
