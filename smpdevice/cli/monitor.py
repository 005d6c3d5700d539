"""`smp monitor`: a live terminal view of one pen, with a key for E-stop."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator

import click

from smpdevice.cli.console import cli_console
from smpdevice.cli.device import port_option
from smpdevice.cli.params import finite_float
from smpdevice.errors import SmpError
from smpdevice.service.cli_client import service_option


@click.command()
@port_option(fallback="pensim://", stop="")
@service_option()
@click.option("--refresh-hz", default=10.0, show_default=True, type=finite_float(0.5, 60),
              help="How often the view is redrawn.")
@click.option("--once", is_flag=True,
              help="Print one snapshot (plain text) and exit: for scripts and logs.")
@click.option("--duration", "duration_s", type=finite_float(0), default=None,
              metavar="S", help="Quit by itself after S seconds (default: run until q).")
def monitor(port: str, service: str | None, refresh_hz: float, once: bool,
            duration_s: float | None) -> None:
    """Watch a pen live: state, setpoints against measured values, current, temperature,
    counters, link quality, latched faults and the lease. Press a key to E-stop.

    \b
    Keys (shown on screen too):
      e or space   E-stop the pen at once (latches until cleared)
      c            clear faults / E-stop once the cause is gone (the needle stays stopped)
      r            reconnect after the link was lost (the needle never resumes by itself)
      q            quit (also Ctrl-C)

    Depth in skin is shown when the pen has a valid stored calibration (`smp calibrate`);
    otherwise the view shows the actuator position and says "uncalibrated".

    The monitor is the host while it runs: connecting stops a needle left running, and
    quitting disarms the pen. If the pen disappears (cable pulled, power off) the view says
    "link lost: ..." and keeps running, so you can reconnect with r.

    \b
    Examples:
      smp monitor                                 # the built-in simulator
      smp monitor --port /dev/ttyACM0
      smp monitor --port socket://127.0.0.1:5555  # a pen started with `smp sim --tcp 5555`
      smp monitor --once --port pensim://         # one snapshot, e.g. into a log file
      smp monitor --service ws://127.0.0.1:8765/rpc  # watch while `smp run --service` drives

    With --service URL (or SMP_SERVICE) the monitor is a viewer of a running `smp serve`: it
    never holds the pen, and e/space still E-stops it.

    Like `smp estop`, the monitor never depends on the station config: when it (or SMP_...)
    is broken, it starts on the built-in settings, after one `warning:` line.
    """
    if service:
        from smpdevice.cli import remote

        remote.monitor(service, refresh_hz=refresh_hz, once=once, duration_s=duration_s)
        return
    from smpdevice.cli.stop_settings import config_warning
    from smpdevice.monitor import Monitor
    from smpdevice.ui.monitor_view import render_text

    warning = config_warning("the monitor started")
    if warning:  # before the view, so it stays above it on the terminal
        click.secho(warning, fg="yellow", err=True)
    mon = Monitor(port)
    if once:
        if not mon.connect():
            raise SmpError(mon.connect_error or "cannot connect")
        try:
            _wait_for_telemetry(mon)
            click.echo(render_text(mon.snapshot(), width=_width()), nl=False)
        finally:
            mon.close()
        return
    mon.connect()  # a failure is shown in the view; r retries
    try:
        _live(mon, refresh_hz, duration_s)
    finally:
        mon.close()
    if mon.pen is None:  # never reached the pen (nor with r): not a watch that went well
        raise SmpError(f"the monitor never reached the pen on {port}: "
                       f"{mon.connect_error or 'cannot connect'}")


def _width() -> int:
    try:
        return max(80, min(140, os.get_terminal_size().columns))
    except OSError:
        return 110


def _wait_for_telemetry(mon, timeout_s: float = 1.0) -> None:
    """Let a few telemetry frames and a lease round trip arrive before the one snapshot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pen = mon.pen
        if pen is not None and pen.link is not None and pen.link.stats.telemetry_received >= 5:
            break
        time.sleep(0.01)


def _live(mon, refresh_hz: float, duration_s: float | None) -> None:
    from rich.live import Live

    from smpdevice.ui.monitor_view import render

    console = cli_console()
    ends_at = None if duration_s is None else time.monotonic() + duration_s
    stop = threading.Event()
    with _keys(mon.handle_key, stop) as reading_keys:
        if not reading_keys:
            mon.message = "stdin is not a terminal: keys are off (Ctrl-C quits)"
        with Live(render(mon.snapshot()), console=console, refresh_per_second=refresh_hz,
                  screen=False, transient=False) as live:
            try:
                while not mon.quit.is_set():
                    if ends_at is not None and time.monotonic() >= ends_at:
                        break
                    live.update(render(mon.snapshot()))
                    time.sleep(1 / refresh_hz)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
                live.update(render(mon.snapshot()))


@contextlib.contextmanager
def _keys(handler: Callable[[str], bool], stop: threading.Event) -> Iterator[bool]:
    """Read single keys from stdin (a terminal, in cbreak mode) in a thread; yield whether on."""
    try:
        fd = sys.stdin.fileno()
        is_tty = os.isatty(fd)
    except (AttributeError, OSError, ValueError):
        is_tty = False
    if not is_tty:
        yield False
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    # cbreak, not full raw: keys arrive one at a time unechoed, while output keeps its newline
    # handling (rich needs it) and Ctrl-C still interrupts.
    tty.setcbreak(fd)

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            key = os.read(fd, 1).decode(errors="replace")
            if not key or not handler(key):
                stop.set()

    thread = threading.Thread(target=read, name="smp-monitor-keys", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(timeout=0.5)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
