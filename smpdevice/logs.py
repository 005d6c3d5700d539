"""structlog set-up: short console lines for people, JSON lines for machines, and the detail in
a log file.

`SMP_LOG_FORMAT=json` switches stderr to JSON lines; `SMP_LOG_LEVEL` (default warning on the
command line) sets how much reaches stderr. Context (pen_serial, state, zone, session_id,
pass_id) is bound by the code that knows it.

On the command line (`configure(detail_log=True)`) every event of level info and up (debug
with `--log-level debug`) is also written whole, as a JSON line, to `smp.log` in the data
directory: 0600, rotated at 1 MiB, 3 old files kept. The terminal then gets one line per event:
bulky fields such as the last frames before a fault are left out and the line says where they
are, so a fault during `smp run` does not bury the technician's screen in frame dumps.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import logging.handlers
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from smpdevice.errors import SmpError

DETAIL_LOG_NAME = "smp.log"
DETAIL_RECORD_NAME = "smpdevice.detail"  # the records' name; no logger is registered by it
DETAIL_LOG_MAX_BYTES = 1024 * 1024
DETAIL_LOG_BACKUPS = 3
TERMINAL_VALUE_CHARS = 120  # a longer field value goes to the detail log only
BULKY_KEYS = frozenset({"last_frames", "frames", "exc_info", "exception", "stack"})


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating file made 0600 before it is first written (it may name pens and clients).
    A failed write (a full disk) goes straight to `on_failure` (DetailLog gives up), never
    printed as the stdlib's "--- Logging error ---" traceback (Handler.handleError)."""

    on_failure: Callable[[BaseException], None] | None = None

    def _open(self):
        from smpdevice.records.files import private_file

        private_file(Path(self.baseFilename))
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:
        if self.on_failure is not None:
            self.on_failure(sys.exc_info()[1] or OSError("unknown error"))


class DetailLog:
    """The detail log file, opened on the first event that reaches it (so commands that log
    nothing never create the data directory)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.path: Path | None = None
        self.error: str | None = None
        self._handler: _PrivateRotatingFile | None = None
        self._giving_up = threading.Lock()

    def _open(self) -> _PrivateRotatingFile | None:
        if self._handler is not None or self.error is not None:
            return self._handler
        try:
            from smpdevice.paths import data_dir

            self.path = data_dir() / DETAIL_LOG_NAME
            handler = _PrivateRotatingFile(self.path, maxBytes=DETAIL_LOG_MAX_BYTES,
                                           backupCount=DETAIL_LOG_BACKUPS, encoding="utf-8")
        except Exception as exc:  # an unwritable data dir must not stop the command: said
            self._give_up(exc)  # once, as a failed write is (README: one warning line)
            return None
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.on_failure = self._give_up
        self._handler = handler
        return handler

    def write(self, event: dict[str, Any]) -> None:
        # Straight to the file's handler, never through `logging.getLogger`: a named logger
        # stays registered for the life of the process, one per command run in it (the
        # service, a test worker), and every later walk of the loggers pays for them.
        handler = self._open()
        if handler is not None:  # a failure: _give_up, at once
            handler.handle(logging.LogRecord(DETAIL_RECORD_NAME, logging.INFO, __file__, 0,
                                             json.dumps(event, default=str), None, None))

    def _give_up(self, failure: BaseException) -> None:
        """The detail log cannot be written (a full disk): one line, once, and no more
        attempts by this process; the command itself goes on (its records are elsewhere)."""
        why = getattr(failure, "strerror", None) or str(failure) or type(failure).__name__
        with self._giving_up:  # two threads failing at once still print one line
            if self.error is not None:
                return
            self.error = f"{self.path or DETAIL_LOG_NAME}: {why}"
        written = self._handler is not None  # it was open: a write failed (a full disk)
        self.close()
        full = getattr(failure, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        todo = ("Free space on that disk." if full or written
                else "Check that it is a file this user can write, in a writable directory.")
        with contextlib.suppress(Exception):  # stderr itself may be gone
            sys.stderr.write(f"warning: the detail log {self.path or DETAIL_LOG_NAME} cannot be "
                             f"written ({' '.join(why.split())}); it is off until this command "
                             f"ends, which goes on. {todo}\n")
            sys.stderr.flush()

    def close(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            with contextlib.suppress(OSError, ValueError):  # its last flush may fail too
                handler.close()


_detail: DetailLog | None = None

# A log call never raises (review 11, F7): stderr may be unwritable (`2>/dev/full`, a reader that
# stopped, `2>&1 | head -1`), and a log line is said on safety paths (the controller's loop
# thread, the pass-time limit): a failed line must never cost the stop it reports or the thread
# that makes it. The first failure is kept here (`log_failure()`), later ones are dropped.
_failure: BaseException | None = None


def log_failure() -> BaseException | None:
    """The first log call of this process that failed (and was dropped), or None."""
    return _failure


@functools.cache
def _never_raising(base: type[Any]) -> type[Any]:
    """`base` (a structlog bound logger class) whose every log call swallows its failure."""

    def _proxy_to_logger(self: Any, method_name: str, event: str | None = None,
                         **event_kw: Any) -> Any:
        global _failure
        try:
            return base._proxy_to_logger(self, method_name, event, **event_kw)
        except Exception as exc:  # stderr gone, a processor's bug: the caller goes on
            if _failure is None:
                _failure = exc
            return None

    return type(f"NeverRaising{base.__name__}", (base,), {"_proxy_to_logger": _proxy_to_logger})


# `terminal_muted()`: how many blocks keep the terminal to the command's own output now.
_muted = 0


@contextlib.contextmanager
def terminal_muted() -> Iterator[None]:
    """Log events still go to the detail log, but none reaches the terminal while the block
    runs: `smp replay`'s replayed controller says again what the recorded run said (a lapsed
    lease, a stop unconfirmed), which on the terminal reads as news about the pen at hand."""
    global _muted
    _muted += 1
    try:
        yield
    finally:
        _muted -= 1


def _to_detail_log(terminal_level: int, detail: DetailLog):
    """A processor: write the whole event to the detail log, then keep for the terminal only
    what belongs there (its level, short fields) plus where the rest is."""

    def process(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = logging.getLevelNamesMapping().get(method.upper(), logging.INFO)
        if level >= detail.level:
            detail.write(event)
        if level < terminal_level or _muted:
            raise structlog.DropEvent
        bulky = [k for k, v in event.items()
                 if k in BULKY_KEYS or len(str(v)) > TERMINAL_VALUE_CHARS]
        if bulky:
            for key in bulky:
                del event[key]
            where = f"not written: {detail.error}" if detail.error else detail.path
            event["detail"] = f"{', '.join(bulky)} in {where}"
        return event

    return process


def _one_line(_logger: Any, _method: str, event: dict[str, Any]) -> str:
    """`warning: link lost  reason='...' pen_serial=...`: one line, no padding, no timestamp."""
    level = event.pop("level", "info")
    event.pop("timestamp", None)
    text = str(event.pop("event", ""))
    fields = "  ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
                       for k, v in event.items())
    return f"{level}: {text}" + (f"  {fields}" if fields else "")


# The levels `configure` takes (as `smp --log-level` does), any case.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def terminal_level_of(level: object) -> int:
    """`level`, else SMP_LOG_LEVEL, else warning, as a `logging` level; anything but one of
    LEVELS is refused (InvalidArgument), never taken as some other attribute of `logging`."""
    from smpdevice.checks import InvalidArgument

    env = os.environ.get("SMP_LOG_LEVEL")
    given, name = (level, "level") if level else (env, "SMP_LOG_LEVEL")
    if not given:
        return logging.WARNING
    if not isinstance(given, str) or given.lower() not in LEVELS:
        shown = repr(given) if len(repr(given)) <= 40 else repr(given)[:37] + "..."
        raise InvalidArgument(f"{name}={shown} is not a log level; allowed: "
                              f"{', '.join(LEVELS)} (any case). Correct it.")
    return LEVELS[given.lower()]


def configure(level: str | None = None, fmt: str | None = None, *,
              detail_log: bool = False) -> None:
    global _detail
    terminal_level = terminal_level_of(level)
    fmt = fmt or os.environ.get("SMP_LOG_FORMAT") or "console"
    if _detail is not None:
        _detail.close()
        _detail = None
    processors: list[Any] = [structlog.processors.add_log_level,
                             structlog.processors.TimeStamper(fmt="iso"),
                             structlog.processors.format_exc_info]
    least = terminal_level
    if detail_log:
        _detail = DetailLog(min(terminal_level, logging.INFO))
        least = _detail.level
        if fmt != "json":  # machines reading JSON on stderr get every field
            processors.append(_to_detail_log(terminal_level, _detail))
        else:
            processors.append(_detail_only(terminal_level, _detail))
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer()
    elif detail_log:
        renderer = _one_line
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=_never_raising(structlog.make_filtering_bound_logger(least)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _detail_only(terminal_level: int, detail: DetailLog):
    def process(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = logging.getLevelNamesMapping().get(method.upper(), logging.INFO)
        if level >= detail.level:
            detail.write(dict(event))
        if level < terminal_level or _muted:
            raise structlog.DropEvent
        return event

    return process


def detail_log_path() -> Path | None:
    """Where the detail log of this command is (None before anything was written to it)."""
    return _detail.path if _detail is not None else None


def ensure_configured() -> None:
    """Give a program that never configured structlog our defaults (stderr, warnings), so
    the library never prints log lines into a program's standard output."""
    if not structlog.is_configured():
        try:
            configure()
        except SmpError as exc:  # a bad SMP_LOG_LEVEL: the library still works, and says so
            configure("warning")
            structlog.get_logger("smpdevice").warning("log level not used", error=str(exc))
