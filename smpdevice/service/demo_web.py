"""`smp demo --web`: a simulated pen, calibrated against its gauge, served with the console."""

from __future__ import annotations

import signal
import threading
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
    from smpdevice.service.command import open_console, service_dir
    from smpdevice.service.runner import ServiceHandle, ServiceOptions, claim_start

    # Refused (another service on this data directory, the listen port taken: exit 2) before
    # the simulated pen is started and its calibration saved into the data directory.
    with claim_start(ServiceOptions(port="", listen=listen)) as dir_lock, \
            PenSimulator(seed=seed) as sim:
        click.echo(f"Simulated pen {sim.serial} started ({sim.url}); calibrating it against "
                   "its gauge...")
        with PenController.connect(sim.url) as pen:
            report = run_calibration(pen, SimulatorGauge(sim.url), technician="demo",
                                     settings=CalibrationSettings(spin_duration_s=0.3),
                                     store=CalibrationStore())
            if not report.passed:
                raise SmpError("the demo calibration failed; run `smp demo` to see why")
            calibration = pen.calibration
        with ServiceHandle(ServiceOptions(port=sim.url, listen=listen, calibration=calibration,
                                          dir_lock=dir_lock)) as service:
            stop = until or threading.Event()
            # SIGTERM and SIGHUP (the terminal closed) stop as Ctrl-C does, and as `smp serve`
            # does: the service closes, so a running session stops its needle, records its
            # pass and is left open. Taken before the URLs are printed: whoever reads them may
            # signal at once.
            previous = _on_stop_signals(stop.set)
            page = None
            try:
                url = service.console_url()
                click.echo(f"Console: {url}")
                click.echo(f"JSON-RPC: {service.url}  (tokens: service.tokens.json in the "
                           "data directory). Ctrl-C stops.")
                if open_browser:  # never waits for the browser (a text browser runs till quit)
                    page = open_console(url, service_dir(service.server))  # nor for its page
                while not stop.wait(0.2):
                    pass
                click.echo("stopped.")
            except KeyboardInterrupt:
                click.echo("stopped.")
            finally:
                if page is not None:
                    page.forget()
                for signum, handler in previous.items():
                    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _on_stop_signals(then: Callable[[], None]) -> dict[int, Any]:
    """Call `then` on SIGTERM or SIGHUP; the previous handlers, none off the main thread
    (tests)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, lambda *_: then()) for signum in STOP_SIGNALS}
