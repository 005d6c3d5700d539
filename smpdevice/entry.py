"""The `smp` program's entry point: Ctrl-C gets one line and exit 130 from the first moment.

The command line's modules take a while to import; a Ctrl-C meanwhile must not print a
traceback. Nothing here imports more than the standard library before the guard is up.

Also the process's standard streams, before anything opens a file: a closed stdin, stdout or
stderr (`<&-`, `>&-`, `2>&-`) gets /dev/null on its descriptor, so no file the command opens (the
detail log, a pen's port) can land on fd 0-2 and take in what is printed or be read as keys; and
a terminal whose encoding cannot show a character never makes a write raise (review 12, REVG-1,
REVG-4, REVG-12).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import signal
import sys
from typing import Any

STARTING_LINE = ("interrupted: while starting: no pen was touched; the needle never started and "
                 "nothing was recorded.")

# The descriptors (0, 1, 2) that were closed when the program started (now /dev/null).
CLOSED_AT_START: set[int] = set()

# The product's own typography, written in ASCII where the terminal's encoding cannot show it.
# Any other character it cannot show is written as `?` and counted: that output is lost.
ASCII_FORMS = {"\u2014": "-", "\u2013": "-", "\u00b7": "|", "\u00b5": "u", "\u00b0": "deg",
               "\u00b1": "+/-", "\u00a0": " ", "\u2026": "...", "\u2192": "->", "\u2190": "<-",
               "\u2264": "<=", "\u2265": ">=", "\u00d7": "x"}
STDOUT_ERRORS = "smpdevice.stdout"  # codec error handlers of the guarded streams
STDERR_ERRORS = "smpdevice.stderr"
_unencodable = [0]


def unencodable_count() -> int:
    """How many characters stdout could not encode so far (written as `?`)."""
    return _unencodable[0]


def _one_char(exc: UnicodeError, *, count: bool) -> tuple[str | bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that was not text when read (surrogateescape)
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    if char in ASCII_FORMS:
        return ASCII_FORMS[char], exc.start + 1
    if not count:
        return f"\\u{ord(char):04x}", exc.start + 1
    _unencodable[0] += 1
    return "?", exc.start + 1


codecs.register_error(STDOUT_ERRORS, lambda exc: _one_char(exc, count=True))
codecs.register_error(STDERR_ERRORS, lambda exc: _one_char(exc, count=False))


def standard_streams() -> None:
    """Put /dev/null on every closed standard descriptor and give Python a stream for it; a
    stdout closed at start is remembered (`CLOSED_AT_START`): its output is lost, and said so."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:  # no /dev/null (a bare chroot): left closed, as Python found it
            continue
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        CLOSED_AT_START.add(fd)
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None and fd in CLOSED_AT_START:
            stream = open(fd, "r" if fd == 0 else "w",  # noqa: SIM115 (the process's own)
                          buffering=-1 if fd == 0 else 1, encoding="utf-8",
                          errors="backslashreplace", closefd=False)
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)


def _drop_signal_race(unraisable: Any, previous: Any = sys.unraisablehook) -> None:
    """CPython reports a SIGINT that arrived as its handler became SIG_IGN ("ignored due to
    race condition"): ignoring it is what was asked, so it is not printed. Nor is a Ctrl-C
    raised where Python cannot pass it on (a weakref callback of the import machinery, as
    Ctrl-C held down from the start met it, printed with a traceback): it is delivered again,
    so it is never lost, and the program answers it with its one line and exit 130."""
    error = unraisable.exc_value
    if isinstance(error, OSError) and "ignored due to race condition" in str(error):
        return
    if isinstance(error, KeyboardInterrupt):
        with contextlib.suppress(OSError, ValueError):
            signal.raise_signal(signal.SIGINT)  # runs the handler of now at the next step
        return
    previous(unraisable)


def _ignore_sigint() -> None:
    """The exit status is decided: no later Ctrl-C may turn it into a death by SIGINT, nor a
    SIGTERM or SIGHUP (taken as Ctrl-C until here) into a death by them: Python's finalization
    puts a handler it installed back to the default, not one that ignores (review 16c: a
    second SIGTERM, as a service manager sends, landing as the process ended killed it)."""
    with contextlib.suppress(ValueError, OSError):  # not the main thread
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
    # A Ctrl-C that lands in code exec() runs from a string (dataclasses and namedtuples make
    # their methods so, as a command's modules are imported) sets CPython's "unhandled
    # KeyboardInterrupt" flag though the command handled it: `python -m smpdevice` would then
    # kill itself by SIGINT at its very end instead of exiting with the status decided here
    # (6 of 40 `smp monitor` runs with Ctrl-C held).
    with contextlib.suppress(Exception):
        import ctypes

        flag = ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt")
        flag.value = 0


def _say(line: str) -> None:
    """One line straight to fd 2: never raises, and leaves nothing buffered that Python's exit
    would fail to flush (and then exit 120) when stderr is a full disk or a closed pipe."""
    with contextlib.suppress(OSError):
        os.write(2, f"{line}\n".encode(errors="backslashreplace"))


def holds_interrupt(error: BaseException) -> bool:
    """Whether `error` is a Ctrl-C in disguise: a KeyboardInterrupt given as its __cause__
    (`raise ... from`), directly or down a chain of causes. Python 3.11 wraps one raised in
    `__set_name__` (a pydantic model or a dataclass being made as a command's module is
    imported) in RuntimeError("Error calling __set_name__ ...") caused by it; it is answered
    as the Ctrl-C it is (one line, exit 130). An error that merely happened while a Ctrl-C was
    being handled (its __context__: a failed clean-up, a stop that raised) is a real failure
    and keeps its traceback (review 18c)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__
    return False


def main() -> None:
    standard_streams()
    sys.unraisablehook = _drop_signal_race
    try:
        if os.environ.get("SMP_LOG_LEVEL", "").lower() in ("debug", "info"):
            # Said before the slow imports, so a person (or a test) sees the program is alive.
            event = {"event": "starting", "level": "info", "logger": "smpdevice.entry",
                     "pid": os.getpid()}
            line = (json.dumps(event) if os.environ.get("SMP_LOG_FORMAT") == "json"
                    else f"[info     ] starting pid={os.getpid()}")
            _say(line)  # stderr on a full disk: a sign of life lost, nothing else
        from smpdevice.cli import main as cli
        from smpdevice.cli.interrupt import CTRL_C

        CTRL_C.own_process()  # when the command ends, later Ctrl-Cs are ignored
        cli()  # from here on, the command line answers Ctrl-C itself
    except KeyboardInterrupt:  # during the imports, or before the command line took over
        _ignore_sigint()
        _say(STARTING_LINE)
        raise SystemExit(130) from None
    except Exception as exc:
        if not holds_interrupt(exc):
            raise
        _ignore_sigint()  # a Ctrl-C wrapped by Python (RuntimeError of `__set_name__`)
        _say(STARTING_LINE)
        raise SystemExit(130) from None
    finally:
        _ignore_sigint()
