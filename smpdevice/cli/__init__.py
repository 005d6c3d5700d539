"""The `smp` command line. Each area registers its commands from a module of its own."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from smpdevice import __version__, entry
from smpdevice.cli.interrupt import CTRL_C
from smpdevice.errors import SmpError

# smpdevice.config.LOG_LEVELS, spelled out so `smp --help` need not import the config module
# (pathlib, tomllib); tests/smpdevice/cli/test_cli_lazy.py keeps the two equal.
LOG_LEVELS = ("debug", "info", "warning", "error")


def exit_interrupted(line: str) -> NoReturn:
    """The one line Ctrl-C gets, then exit 130."""
    from smpdevice.outcomes import ExitCode

    click.secho(f"interrupted: {line}", fg="red", err=True)
    sys.exit(ExitCode.INTERRUPTED)


# ------------------------------------------------------------------ standard output
# `smp ... > /dev/full`, a full disk, a closed pipe (`| head -2`) or a vanished terminal make a
# write to stdout raise OSError wherever the command happens to print: in `smp run` between
# opening a session and playing it. Output is what a command shows, never its record (the pass
# log, the calibration store are), so a lost output must not stop the work half-done. While a
# command runs, stdout writes through `_Fd1`: the first failed write is remembered, fd 1 is
# pointed at /dev/null (later writes, and Python's own flush at exit, then succeed), and the
# command goes on. When it ends, `_exit_if_output_lost` reports one line and exits non-zero.
# (Here, not in a module of its own: `smp --help` imports no other smpdevice.cli module.)


class _Fd1(io.RawIOBase):
    """fd 1 (or 2), whose write never raises: a failure is kept in `error` and the fd
    silenced."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.error: OSError | None = None
        self.closed_at_start = False  # `>&-`: fd is /dev/null; a write is a lost one

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self.error is not None:
            return size
        if self.closed_at_start and size:
            self.error = OSError(errno.EBADF, "standard output is closed")
            return size
        try:
            written = 0
            while written < size:  # a pipe may take part of it
                written += os.write(self.fd, memoryview(data)[written:])
        except OSError as exc:
            self.error = exc
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.fd)
                os.close(devnull)
        return size

    def close(self) -> None:  # fd 1 stays open: it is not ours to close
        super().close()


class _Output:
    """What happened to stdout while a command ran."""

    def __init__(self, raw: _Fd1 | None = None, stream: io.TextIOWrapper | None = None) -> None:
        self._raw, self._stream = raw, stream
        self._unencodable = entry.unencodable_count()

    def lost(self) -> str | None:
        """What was lost, as one line (after pushing out what is still buffered), or None."""
        if self._raw is None:
            return None
        with contextlib.suppress(Exception):
            if self._stream is not None:
                self._stream.flush()
        if self._raw.error is not None:
            return _describe_lost(self._raw.error)
        count = entry.unencodable_count() - self._unencodable
        if count == 0 or self._stream is None:
            return None
        return (f"the output could not all be written: {count} character"
                f"{'s' if count > 1 else ''} cannot be shown in this terminal's encoding "
                f"({self._stream.encoding}) and {'were' if count > 1 else 'was'} written as "
                "'?'. Use a UTF-8 locale (LANG=C.UTF-8) or PYTHONIOENCODING=utf-8")

    def forget(self) -> None:
        self._raw = None


def _own_stream(real: Any, original: Any, fd: int) -> bool:
    """Whether `real` is the process's own stream on `fd` (not pytest's, not CliRunner's)."""
    try:
        return real is original and real is not None and real.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def _guarded_stdout() -> Iterator[_Output]:
    """Replace the process's real stdout by a guarded one while the block runs. A stdout that
    is not the process's own (pytest, click's CliRunner) is left alone."""
    real = sys.stdout
    if not _own_stream(real, sys.__stdout__, 1):
        yield _Output()
        return
    with contextlib.suppress(Exception):
        real.flush()
    raw = _Fd1(1)
    raw.closed_at_start = 1 in entry.CLOSED_AT_START
    # a character the terminal cannot show is written as `?` and said at the end (REVG-1)
    guarded = io.TextIOWrapper(io.BufferedWriter(raw), encoding=real.encoding,
                               errors=entry.STDOUT_ERRORS,
                               line_buffering=bool(real.line_buffering))
    sys.stdout = guarded
    try:
        yield _Output(raw, guarded)
    finally:
        with contextlib.suppress(Exception):
            guarded.flush()
        sys.stdout = real


@contextlib.contextmanager
def _guarded_stderr() -> Iterator[None]:
    """fd 2 through a writer that never raises, while the command runs: with stderr gone
    (`2>/dev/full`, `2>&1 | head -1` once the reader stopped) a warning, a log line or the one
    `error:` line is dropped instead of raising where it is said (the controller's loop thread,
    `PenController.__exit__`, the exit path), so the command ends as it would have and exits
    with its own code (review 11, F7). A stderr that is not the process's own is left alone."""
    real = sys.stderr
    if not _own_stream(real, sys.__stderr__, 2):
        yield
        return
    with contextlib.suppress(Exception):
        real.flush()
    # unbuffered, as Python's own stderr: every line leaves at once, whole (_Fd1 loops)
    guarded = io.TextIOWrapper(_Fd1(2), encoding=real.encoding,  # type: ignore[type-var]
                               errors=entry.STDERR_ERRORS, write_through=True)
    sys.stderr = guarded
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            guarded.flush()
        sys.stderr = real


def _describe_lost(error: OSError) -> str:
    """One line: what was lost and what to do."""
    why = error.strerror or str(error) or type(error).__name__
    if error.errno == errno.EBADF:
        return (f"{why}: the command ran to its end, but what it printed is lost. Give it "
                "somewhere to write (a file, a pipe, or > /dev/null to discard it)")
    if error.errno == errno.EPIPE:
        return (f"the output could not be written ({why}): the program reading it stopped "
                "early; what it did not read is lost")
    return (f"the output could not be written ({why}): the command ran to its end, but what "
            "it printed is lost. Free space on that disk or redirect the output elsewhere")


def _exit_if_output_lost(output: _Output, code: object) -> None:
    """When stdout was lost: one line on stderr, and exit with the command's own non-zero
    code (its outcome: `smp run`'s E-stop stays 5), else USER_ERROR (2)."""
    from smpdevice.outcomes import ExitCode

    line = output.lost()
    if line is None:
        return
    output.forget()  # said once
    click.secho(f"error: {line}", fg="red", err=True)
    sys.exit(code if isinstance(code, int) and code != 0 else ExitCode.USER_ERROR)


class _Group(click.Group):
    """Turns every SmpError into one clear line and a non-zero exit, never a traceback, and
    Ctrl-C into one line and exit 130."""

    def main(self, *args, **kwargs):
        # Ctrl-C while the arguments are parsed is held until invoke() can answer it. A stdout
        # that cannot be written (full disk, closed pipe) never stops a command half-done:
        # it is reported once the command ended (see _Fd1).
        entry.standard_streams()  # (done already when started as `smp`)
        with _guarded_stderr(), _guarded_stdout() as output:
            try:
                with CTRL_C.command():
                    return super().main(*args, **kwargs)
            except SystemExit as exc:
                _exit_if_output_lost(output, exc.code)
                raise
            finally:
                _exit_if_output_lost(output, 0)

    def invoke(self, ctx: click.Context):
        try:
            with CTRL_C.immediate():
                return super().invoke(ctx)
        except SmpError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a file or device failed under a command (--output on a full
            # disk): one line, never a traceback. Errors a command expects are SmpErrors.
            from smpdevice.outcomes import ExitCode

            what = f" ({exc.filename})" if exc.filename else ""
            click.secho(f"error: a file or device failed{what}: {exc.strerror or exc}. Free "
                        "space, check the file or device, and run the command again",
                        fg="red", err=True)
            sys.exit(ExitCode.USER_ERROR)
        except KeyboardInterrupt:
            exit_interrupted("the command stopped before finishing.")
        except click.exceptions.Abort:
            if CTRL_C.requested:  # a prompt turned Ctrl-C into Abort
                exit_interrupted("the command stopped before finishing.")
            # else a question met the end of its input (`< /dev/null`, `<&-`, a script)
            from smpdevice.outcomes import ExitCode

            click.secho("error: a question got no answer (standard input ended): run the "
                        "command at a terminal, or give the answer as an option (see --help)",
                        fg="red", err=True)
            sys.exit(ExitCode.CHECK_FAILED)
        except Exception as exc:  # a Ctrl-C Python wrapped (RuntimeError of `__set_name__`
            # as a command's module is imported) is a Ctrl-C; a chosen exit status stays
            if isinstance(exc, click.exceptions.Exit) or not entry.holds_interrupt(exc):
                raise
            exit_interrupted("the command stopped before finishing.")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smp")
@click.option("--log-level", default=None, type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="How much is logged to stderr (the detail log smp.log in the data directory "
                   "keeps info and up). Default: SMP_LOG_LEVEL, else log_level in "
                   "the station config, else warning.")
@click.option("--log-json", is_flag=True, help="Log JSON lines (also SMP_LOG_FORMAT=json).")
def main(log_level: str | None, log_json: bool) -> None:
    """Drive, calibrate and simulate a rotary SMP pen.

    \b
    Start here:
      smp demo                      the whole system on the built-in simulator
      smp info --port pensim://     who a pen is, its firmware and hard limits
      smp protocol decode HEX       read a captured frame
      smp config show               this station's settings and where each comes from

    Every command takes --help. No hardware is needed: the port `pensim://` is a simulated pen.
    """
    from smpdevice.config import ConfigError, setting
    from smpdevice.logs import configure

    # A broken config file must not stop `smp config check` from saying what is wrong.
    try:
        level = setting("log_level", log_level, strict=False).value
    except ConfigError:  # a bad SMP_LOG_LEVEL: an E-stop never waits on the config (their
        if click.get_current_context().invoked_subcommand not in ("estop", "monitor"):
            raise  # own warning line names it); every other command refuses, exit 1
        level = "warning"
    configure(level, "json" if log_json else None, detail_log=True)


# name -> (module, attribute, first sentence of its help). A command's module is imported only
# when the command is used (or its own --help asked for): `smp --help` imports none of them.
# tests/smpdevice/cli/test_cli_lazy.py checks each summary against the command's real help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("smpdevice.cli.demo", "demo",
             "Run the main job on the built-in simulator: no hardware needed."),
    "ports": ("smpdevice.cli.device", "ports", "List serial ports with their USB identity."),
    "info": ("smpdevice.cli.device", "info", "Connect, run the handshake and print the pen's "
             "identity, firmware, limits and state."),
    "estop": ("smpdevice.cli.safety", "estop", "E-stop a pen at once: the needle stops and "
              "retracts, and stays stopped until cleared."),
    "clear": ("smpdevice.cli.safety", "clear", "Show a pen's latched faults or E-stop and clear "
              "them, once their cause is gone."),
    "monitor": ("smpdevice.cli.monitor", "monitor", "Watch a pen live: state, setpoints against "
                "measured values, current, temperature, counters, link quality, latched faults "
                "and the lease."),
    "calibrate": ("smpdevice.cli.calibrate", "calibrate", "Calibrate a pen's depth (zero, depth "
                  "points, fit), check its speed, verify, and save."),
    "calibrations": ("smpdevice.cli.calibrations", "calibrations", "Stored calibrations."),
    "profile": ("smpdevice.cli.profile", "profile",
                "Check treatment profiles before they reach a pen."),
    "envelope": ("smpdevice.cli.envelope", "envelope", "Check safety-envelope files (per-zone "
                 "limits) before a session uses them."),
    "run": ("smpdevice.cli.run", "run", "Play a treatment profile on a pen and record every pass."),
    "sessions": ("smpdevice.cli.sessions", "sessions", "List, show, export and verify the "
                 "sessions and passes in the pass log."),
    "replay": ("smpdevice.cli.replay", "replay", "Replay a recorded session and say whether it "
               "matches what was logged."),  # issue 15.3
    "keys": ("smpdevice.cli.keys", "keys",
             "The installation key that signs the pass log's heads (Ed25519)."),
    "sim": ("smpdevice.cli.sim", "sim",
            "Run a simulated pen until Ctrl-C, reachable like a real one."),
    "protocol": ("smpdevice.cli.protocol", "protocol", "Inspect the wire protocol: decode frames, "
                 "print the golden vectors."),
    "config": ("smpdevice.cli.config", "config", "The station config file: this station's "
               "defaults (port, technician, data directory, envelope file, footswitch mode, log "
               "level)."),
    "diagram": ("smpdevice.cli.device", "diagram", "Print the controller's state diagram "
                "(Mermaid), generated from the state machine."),
    "serve": ("smpdevice.service.command", "serve", "Own one pen and serve it: JSON-RPC 2.0 over "
              "WebSocket and a Unix socket, and the technician's web console."),  # issue 14, G
}


def load_command(name: str) -> click.Command:
    """Import the module of command `name` and return the command."""
    import importlib

    module, attribute, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), attribute)


class _LazyCommands(dict):
    """`main.commands`: every name is there; a command's module loads on first access."""

    def __missing__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        command = self[name] = load_command(name)
        return command

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or dict.__contains__(self, name)

    def __iter__(self):
        return iter({**dict.fromkeys(COMMANDS), **dict.fromkeys(dict.keys(self))})

    def keys(self):
        return list(self)

    def items(self):  # (loads every command)
        return [(name, self[name]) for name in self]

    def values(self):
        return [self[name] for name in self]

    def __len__(self) -> int:
        return len(list(iter(self)))


def _format_commands(self: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """`smp --help`'s command list from the table's summaries, importing no command module."""
    names = self.list_commands(ctx)
    if not names:
        return
    limit = formatter.width - 6 - max(len(n) for n in names)
    rows = []
    for name in names:
        if name in COMMANDS and not dict.__contains__(self.commands, name):
            summary = click.Command(name, help=COMMANDS[name][2])  # click shortens it as usual
            rows.append((name, summary.get_short_help_str(limit)))
        else:
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


main.commands = _LazyCommands()
main.format_commands = _format_commands.__get__(main)  # type: ignore[method-assign]
