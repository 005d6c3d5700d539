"""Start the whole service: connect the pen, load its calibration, make the tokens, listen.

`ServiceHandle` runs it on an event loop in a thread of its own (for `smp demo --web`, tests
and benchmarks); `smp serve` runs it in the foreground until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog

from smpdevice.errors import SmpError
from smpdevice.service.auth import Role, load_or_create_tokens
from smpdevice.service.deadman import GatedPenController
from smpdevice.service.pen_service import PenService
from smpdevice.service.server import SOCKET_NAME, Listen, ServeError, ServiceServer, preflight
from smpdevice.service.session_gate import follow_store, through_service

log = structlog.get_logger("smpdevice.service")


@dataclass
class ServiceOptions:
    port: str
    listen: str = "127.0.0.1:8765"
    data_dir: Path | None = None
    allow_remote: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    unix_socket: bool = True
    lease_ms: int = 500  # the pen's own lease
    telemetry_hz: int = 50
    calibration: Any = None  # a Calibration; else the newest valid one from the store
    footswitch: str | None = None  # required | optional | off; None: the station config's
    envelope: str | None = None  # a zone-limits file; None: the station's (as `smp run`)
    # The clock of the clients' driver leases (seconds). Tests that are not about the dead-man
    # may hold it, so a stalled test process cannot let a driving client's lease run out.
    lease_clock: Callable[[], float] = time.monotonic
    # serve.lock, taken already (`claim_start`, by `smp demo --web` before its simulated pen
    # is calibrated): the service holds it from there on, and closes it with itself
    dir_lock: IO[bytes] | None = None


def _calibration_for(pen: GatedPenController, directory: Path) -> tuple[Any, str | None]:
    """The pen's newest calibration in the service's data directory (`directory`, never
    $SMP_DATA_DIR's when the options name another) if it may be used now, and None; else None
    and why not (clients then calibrate: a service never refuses to start for it). The reason
    is logged and kept for the service's `pen.identity` answer (`smp info --service`)."""
    from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
    from smpdevice.control.calibration import CalibrationError, require_calibration

    try:
        cal = CalibrationStore(directory / CALIBRATIONS_NAME, readonly=True).latest(pen.serial)
    except SmpError as exc:
        log.warning("calibrations unreadable", error=str(exc))
        return None, (f"the stored calibrations could not be read: {str(exc).rstrip('.')}. "
                      "Calibrate the pen through the service: smp calibrate --service URL")
    if cal is None:
        return None, None
    try:  # the check installing makes: expired, future-dated (a clock that ran ahead), a
        # simulator's on a real pen
        require_calibration(cal, pen.serial, simulated_pen=pen.simulated,
                            now=pen.validity_now())  # as set_calibration judges it
    except CalibrationError as exc:  # never a reason not to start: clients then calibrate
        log.warning("stored calibration not used; the pen starts uncalibrated",
                    calibration_id=cal.calibration_id, reason=str(exc))
        return None, (f"stored calibration {cal.calibration_id} not used: "
                      f"{through_service(str(exc))}")
    return cal, None


def build(options: ServiceOptions) -> ServiceServer:
    """Connect the pen and build the (not yet started) server. Blocking."""
    from smpdevice.envelope import station_envelope
    from smpdevice.paths import PASS_LOG_NAME

    listen, tls = _listen_of(options)
    # The limits every client's session is checked against are the station's, as in `smp run`
    # and `smp profile check`: the built-in zones only where the station sets none. Made (and
    # the pen's arguments checked: `--port ""`) before anything is written; opened later.
    zones = station_envelope(options.envelope).zones
    pen = GatedPenController(options.port, lease_ms=options.lease_ms, zones=zones,
                             telemetry_hz=options.telemetry_hz, footswitch=options.footswitch)
    # Checked again for a lock claimed before (`smp demo --web`): the port may have been taken,
    # or the tokens damaged, while its pen was calibrated.
    claim = _claim(options, listen, tls)
    directory, dir_lock = claim.directory, claim.dir_lock
    pen.needle_work_dir = directory  # beside its pass log, never the default data directory
    try:
        pen.open()
    except BaseException:
        dir_lock.close()
        raise
    try:
        calibration, calibration_problem = ((options.calibration, None) if options.calibration
                                            else _calibration_for(pen, directory))
        if calibration is not None:
            pen.set_calibration(calibration)
        service = PenService(pen, tokens=claim.tokens, passlog_path=directory / PASS_LOG_NAME,
                             lease_clock=options.lease_clock)
        service.calibration_problem = calibration_problem  # answered until one is installed
        follow_store(service)  # back in idle from a latch or a loss: the store's newest
        server = ServiceServer(service, listen=listen, socket_path=claim.socket_path,
                               allow_remote=options.allow_remote, tls=tls)
    except BaseException:
        pen.close()
        dir_lock.close()
        raise
    server.dir_lock = dir_lock
    return server


def claim_start(options: ServiceOptions) -> IO[bytes]:
    """`build`'s checks before the pen opens (`_claim`), made before anything else is opened
    or written (`smp demo --web` calibrates its pen first). The lock, for `options.dir_lock`;
    ServeError (exit 2) else, with nothing held."""
    listen, tls = _listen_of(options)
    return _claim(options, listen, tls).dir_lock


def _listen_of(options: ServiceOptions) -> tuple[Listen, ssl.SSLContext | None]:
    """The listen address and TLS context the options give (refused before anything else)."""
    from smpdevice.service.server import tls_context

    return Listen.parse(options.listen), tls_context(options.tls_cert, options.tls_key)


@dataclass
class _Claim:
    directory: Path
    tokens: dict[Role, str]
    socket_path: Path | None
    dir_lock: IO[bytes]


def _claim(options: ServiceOptions, listen: Listen, tls: ssl.SSLContext | None) -> _Claim:
    """The one place of a start's checks before the pen opens, in this order (build's and
    claim_start's): the data directory made private (0700: the tokens and the socket live
    there), a token file clients can use, serve.lock taken (or `options.dir_lock` kept: two
    `smp serve` started together both passed the socket check, bound only once the pen is
    open), then `preflight`: no other service, a free listen port, a listen address allowed.
    ServeError (exit 2) else, the lock closed (the one given too)."""
    from smpdevice.paths import data_dir
    from smpdevice.records.files import private_dir

    directory = Path(options.data_dir) if options.data_dir else data_dir()
    private_dir(directory)
    tokens = load_or_create_tokens(directory)  # a token file no client could use: refused
    socket_path = directory / SOCKET_NAME if options.unix_socket else None
    dir_lock = options.dir_lock if options.dir_lock is not None else take_serve_lock(directory)
    try:
        preflight(listen, socket_path, allow_remote=options.allow_remote, tls=tls)
    except BaseException:
        dir_lock.close()
        raise
    return _Claim(directory, tokens, socket_path, dir_lock)


def take_serve_lock(directory: Path) -> IO[bytes]:
    """The data directory's `smp serve` lock (flock, released when the file closes or the
    process ends): ServeError if another service holds it."""
    lock = open(directory / "serve.lock", "ab")  # noqa: SIM115 (held for the service's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ServeError(f"another `smp serve` already runs on the data directory {directory} "
                         "(it holds serve.lock); stop it first") from None
    return lock


class ServiceHandle:
    """A running service on its own event-loop thread. `stop()` ends it (idempotent)."""

    def __init__(self, options: ServiceOptions) -> None:
        self.server = build(options)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._main, name="smp-service", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            # Closed here, in its own thread: left to the garbage collector at interpreter exit
            # it closed a self-pipe already gone and printed a traceback on the way out.
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _serve(self) -> None:
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            with contextlib.suppress(Exception):
                await self.server.close()  # the pen too
            return
        self._ready.set()
        await self._stopped.wait()
        await self.server.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def socket_path(self) -> Path | None:
        return self.server.socket_path

    @property
    def pen(self) -> GatedPenController:
        return self.server.service.pen

    def token(self, role: Role = Role.OPERATOR) -> str:
        return self.server.service.tokens[role]

    def console_url(self, role: Role = Role.TECHNICIAN) -> str:
        return self.server.console_url(role)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(30)

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve_forever(options: ServiceOptions, on_ready: Any = None) -> None:
    """`smp serve`: run until cancelled (Ctrl-C / SIGTERM)."""
    server = await asyncio.to_thread(build, options)
    await run_server(server, on_ready)


async def run_server(server: ServiceServer, on_ready: Any = None) -> None:
    """Start a built server and run it until cancelled. Whatever ends it, a start that failed
    included, closes it: the pen is stopped, disarmed and closed, never left to the process's
    exit ("link lost")."""
    try:
        await server.start()
        if on_ready is not None:
            on_ready(server)
        await asyncio.Event().wait()
    finally:
        await server.close()
