"""`smp demo --web`: a simulated pen, calibrated against its gauge, served with the console."""

from __future__ import annotations

import signal
import threading
import webbrowser
from collections.abc import Callable
from typing import Any

import click


def run(seed: int, listen: str = "127.0.0.1:8765", open_browser: bool = True,
        until: threading.Event | None = None) -> None:
    from simulators import PenSimulator
    from smpdevice.calibration.gauges import SimulatorGauge
    from smpdevice.calibration.report import CalibrationSettings
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.calibration.workflow import run_calibration
    from smpdevice.control import PenController
    from smpdevice.errors import SmpError
    from smpdevice.service.runner import ServiceHandle, ServiceOptions

    with PenSimulator(seed=seed) as sim:
        click.echo(f"Simulated pen {sim.serial} started ({sim.url}); calibrating it against "
                   "its gauge...")
        with PenController.connect(sim.url) as pen:
            report = run_calibration(pen, SimulatorGauge(sim.url), technician="demo",
                                     settings=CalibrationSettings(spin_duration_s=0.3),
                                     store=CalibrationStore())
            if not report.passed:
                raise SmpError("the demo calibration failed; run `smp demo` to see why")
            calibration = pen.calibration
        with ServiceHandle(ServiceOptions(port=sim.url, listen=listen,
                                          calibration=calibration)) as service:
            url = service.console_url()
            click.echo(f"Console: {url}")
            click.echo(f"JSON-RPC: {service.url}  (tokens: service.tokens.json in the data "
                       "directory). Ctrl-C stops.")
            if open_browser:
                webbrowser.open(url)
            stop = until or threading.Event()
            # SIGTERM stops as Ctrl-C does, and as `smp serve` does: the service closes, so a
            # running session stops its needle, records its pass and is left open.
            previous = _on_sigterm(stop.set)
            try:
                while not stop.wait(0.2):
                    pass
                click.echo("stopped.")
            except KeyboardInterrupt:
                click.echo("stopped.")
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)


def _on_sigterm(then: Callable[[], None]) -> Any:
    """Call `then` on SIGTERM; the previous handler, or None off the main thread (tests)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: then())
