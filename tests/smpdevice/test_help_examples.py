"""Every command shown in an Example section of `smp ... --help` runs (issue 16, item 1).

The examples of every help page run in the commands' order, pages in groups (GROUPS), each
group in one data directory (so the calibration made by `smp calibrate`'s examples is there for
`smp calibrations`', the session of `smp run`'s for `smp sessions`'), each page in a fresh
working directory holding `examples/`. `smp` runs in this process (tests/smpdevice/shell.py);
the pens it reaches over a pty or TCP, and `smp serve`'s own examples, are real processes; the
service a client's example reaches runs here, its pen on virtual time. What a
reader would have and a test has not is put in its place, and nothing else changes:
- a real pen (/dev/ttyACM0, usb:...) -> `pensim://`; `/dev/pts/7`, `socket://...` and their
  gauges -> real `smp sim` processes (the one in `smp sim --help` runs exactly as shown);
- the reader's own files and ids (my.yaml, clinic-envelope.yaml, SMP-7K2Q9XAB, S3f2a, a
  receipt, /mnt/backup/...) -> this run's;
- the reader's station.toml -> a small valid one; `| jq ...` is dropped where jq is missing;
- a person at the dial gauge -> `--auto` (the simulator's gauge); a command that runs until
  Ctrl-C (`smp serve`, live `smp monitor`) -> until it is ready, or for a moment.
A `smp calibrate` on a real-time pen process takes 5 s of that pen's time whatever the
computer: the page of a group that has one (`smp sim`'s) runs first, and that example
runs as a real `smp` process (its own data directory: nothing later reads it) while the
group's other pages run, its result checked at the end (OVERLAPPED).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0
HEADER = re.compile(r"^\s*Examples?\b[^\n]*:\s*$")
# Needs a PostgreSQL server: tests/smpdevice/records/test_records_central.py runs `sessions sync`.
NOT_RUN = {"smp sessions sync --to postgresql://smp@db.clinic.example/smp"}


def _pages(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _pages(command, (*prefix, name))


def examples(path: tuple[str, ...]) -> list[str]:
    """The command lines in the Example sections of `smp PATH --help`."""
    text = CliRunner().invoke(main, [*path, "--help"], terminal_width=200).output
    found, inside = [], False
    for line in text.splitlines():
        if HEADER.match(line):
            inside = True
            continue
        if inside and not line.strip():
            inside = False
        if not inside:
            continue
        words = line.strip().removeprefix("$ ")
        command = re.split(r"\s{2,}", words)[0]  # what follows 2+ spaces is a comment
        if re.match(r"^(\w+=\S+\s+)*smp\b", command):
            found.append(command)
    return found


def all_examples() -> list[tuple[tuple[str, ...], str]]:
    return [(path, cmd) for path in _pages(main) for cmd in examples(path)]


def test_the_help_examples_are_found():
    found = all_examples()
    assert len(found) >= 50
    assert ("run",) in {p for p, _ in found} and ("sim",) in {p for p, _ in found}


class Background:
    """A command that runs until stopped; its first lines are read."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path, lines: int) -> None:
        self.popen = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)
        assert self.popen.stdout is not None
        self.lines = [self.popen.stdout.readline() for _ in range(lines)]
        assert all(self.lines), f"`{command}` ended: {self.popen.stderr.read()}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGINT)
        try:
            self.popen.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(WAIT_S)


class Overlapped:
    """An example run as a real `smp` process while the next pages run (see OVERLAPPED)."""

    def __init__(self, path: tuple[str, ...], shown: str, command: str, cwd: Path,
                 env: dict[str, str]) -> None:
        self.path, self.shown, self.command, self.cwd, self.env = path, shown, command, cwd, env
        self.popen = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], cwd=cwd,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, text=True,
                                      start_new_session=True)

    def result(self) -> tuple[int, str, str]:
        out, err = self.popen.communicate(timeout=WAIT_S)
        return self.popen.returncode, out, err

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(WAIT_S)


class Scenario:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.env = {**os.environ, "SMP_DATA_DIR": str(self.data), "SMP_LOG_LEVEL": "error",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "COLUMNS": "120"}
        self.receipt: str | None = None
        self.background: list[Background] = []
        self.overlapping: list[Overlapped] = []

    # The pens and the service a page's examples reach are started when a page first needs
    # them (so each group of pages starts only its own processes).
    def _pty_sim(self) -> Background:
        if not hasattr(self, "_pty"):
            sim_help = next(c for c in examples(("sim",)) if c.startswith("smp sim"))
            self._pty = self._background(sim_help, 2)  # exactly as the help shows it
        return self._pty

    def _tcp_sim(self) -> Background:
        if not hasattr(self, "_tcp"):
            self._tcp = self._background("smp sim --tcp 0 --gauge-port 0", 2)
        return self._tcp

    @property
    def pty(self) -> str:
        return self._pty_sim().lines[0].strip()

    @property
    def pty_gauge(self) -> str:
        return self._pty_sim().lines[1].split()[1]

    @property
    def tcp(self) -> str:
        return self._tcp_sim().lines[0].strip()

    @property
    def tcp_gauge(self) -> str:
        return self._tcp_sim().lines[1].split()[1]

    @property
    def service(self) -> str:
        """The service a client's example reaches (`smp monitor --service ws://...`): in this
        process, its pen on virtual time; the process is not what that example shows (the
        examples of `smp serve` itself still start real `smp serve` processes)."""
        if not hasattr(self, "_served"):
            from smpdevice.service.runner import ServiceHandle, ServiceOptions

            self._served = ServiceHandle(ServiceOptions(
                port="pensim://?clock=virtual", listen="127.0.0.1:0", data_dir=self.data,
                unix_socket=False))
        return self._served.url

    def _background(self, command: str, lines: int) -> Background:
        b = Background(command, self.env, self.tmp, lines)
        self.background.append(b)
        return b

    def restart_pens(self) -> None:
        """Fresh `smp sim` processes (new ports) in place of the running ones."""
        for name in ("_pty", "_tcp"):
            pen = self.__dict__.pop(name, None)
            if pen is not None:
                pen.stop()
                self.background.remove(pen)

    def stop(self) -> None:
        for started in self.overlapping:
            started.kill()
        if hasattr(self, "_served"):
            self._served.stop()
        for b in self.background:
            b.stop()

    def workdir(self, path: tuple[str, ...]) -> Path:
        cwd = self.tmp / "-".join(path)
        cwd.mkdir()
        (cwd / "examples").symlink_to(ROOT / "examples")
        (cwd / "docs").mkdir()
        shutil.copy(ROOT / "examples" / "clinic_envelope.yaml", cwd / "clinic-envelope.yaml")
        shutil.copy(ROOT / "examples" / "session1_base_density.yaml", cwd / "my.yaml")
        (cwd / "station.toml").write_text('port = "pensim://"\ntechnician = "ana"\n')
        for name in ("calibrations.sqlite", "passlog.sqlite"):
            if (self.data / name).exists():
                shutil.copy(self.data / name, cwd / name)
        return cwd

    def first_time(self, command: str) -> bool:
        """Whether `command` (a process that runs until stopped) has not run yet in this
        scenario, its own data directory aside: `smp serve --port /dev/ttyACM0 --listen ...`
        becomes the same line as `smp serve --port pensim://` (about 1 CPU-s a process)."""
        line = " ".join(re.sub(r"^env SMP_DATA_DIR=\S+ ", "", command).split())
        seen = self.__dict__.setdefault("forever_lines", set())
        if line in seen:
            return False
        seen.add(line)
        return True

    def overlapped(self, path: tuple[str, ...], shown: str, command: str,
                   cwd: Path) -> Overlapped | None:
        """`command` (`shown`, made concrete) started beside the next pages when it calibrates
        a real-time pen process on an OVERLAPPED page; None: run it now, in this process."""
        words = command.split()
        if path[0] not in OVERLAPPED or words[:2] != ["smp", "calibrate"] or not any(
                pen in command for pen in ("/dev/pts/", "socket://")):
            return None
        data = self.tmp / f"data-{'-'.join(path)}-{len(self.overlapping)}"
        started = Overlapped(path, shown, command, cwd, {**self.env, "SMP_DATA_DIR": str(data)})
        self.overlapping.append(started)
        return started

    def concrete(self, command: str, cwd: Path) -> tuple[str, bool]:
        """The command with this run's pens, files and ids; and whether it runs until stopped."""
        from smpdevice.calibration.store import CalibrationStore
        from smpdevice.passlog import PassLog

        lazy: list[tuple[str, Callable[[], str]]] = [
            (r"/dev/ttyACM0|usb:A1B2C3", lambda: "pensim://"),
            (r"/dev/pts/7", lambda: self.pty),
            (r"tcp://127\.0\.0\.1:40123", lambda: self.pty_gauge),
            (r"socket://127\.0\.0\.1:(?:7000|5555)", lambda: self.tcp),
            (r"tcp://127\.0\.0\.1:7001", lambda: self.tcp_gauge),
            (r"ws://127\.0\.0\.1:8765/rpc", lambda: self.service),
            (r"/tmp/smp\b", lambda: str(self.tmp / "demo-data")),
            (r"/mnt/(?:backup|b)/", lambda: f"{self.data}/"),
        ]
        subs = [(pattern, value()) for pattern, value in lazy if re.search(pattern, command)]
        if "SMP-7K2Q9XAB" in command or "3f2a9c1b7d0e" in command:
            (cal, *_) = CalibrationStore(self.data / "calibrations.sqlite").list()
            subs += [("SMP-7K2Q9XAB", cal.pen_serial), ("3f2a9c1b7d0e", cal.calibration_id)]
        if "S3f2a" in command:
            with PassLog(self.data / "passlog.sqlite", readonly=True) as log:
                session_id = log.sessions()[-1].session_id
            subs += [(r"S3f2a\b", session_id[:8]), (r"S3f2a\w+", session_id)]
        if "1a2b:3c4d:" in command:  # the fingerprint `smp keys show` prints
            from smpdevice.records.keys import InstallationKey, key_dir

            key = InstallationKey.load_or_create(key_dir())
            subs.append((r"1a2b:3c4d:\S*", key.fingerprint))
        if "SMP-RECEIPT/1 S3f2a" in command:
            assert self.receipt, "no receipt printed before"
            subs = [(r'"SMP-RECEIPT/1 [^"]*"', f'"{self.receipt}"')]
        for pattern, value in subs:
            command = re.sub(pattern, value.replace("\\", "\\\\"), command)
        if shutil.which("jq") is None:  # the smp part still runs; jq only reshapes its output
            command = re.sub(r"\s*\|\s*jq\b.*$", "", command)
        words = command.split()
        if words[:2] == ["smp", "calibrate"] and not {"--auto", "--gauge"} & set(words):
            command += " --auto"  # a person reads the dial gauge; here the simulator's gauge
        if words[:2] == ["smp", "monitor"] and "--once" not in words:
            command += " --duration 0.1"  # until q otherwise; one refresh of the live view
        if words[:2] == ["smp", "serve"]:
            # a data directory of its own: one service per directory (serve.lock), and the
            # client examples' service (`service` above) holds this scenario's
            self.serves = getattr(self, "serves", 0) + 1
            own = self.tmp / f"serve-data-{self.serves}"
            command = (f"env SMP_DATA_DIR={shlex.quote(str(own))} "
                       + re.sub(r"--listen \S+", "", command) + " --listen 127.0.0.1:0 --no-socket")
            return command, True
        return command, False


@pytest.fixture
def scenario(tmp_path) -> Iterator[Scenario]:
    s = Scenario(tmp_path)
    try:
        yield s
    finally:
        s.stop()


# The pages run in groups, each group in its own data directory and in parallel under xdist.
# A group holds what its later pages need: `smp calibrations` lists what `smp calibrate` made,
# `smp sessions` and `smp replay` read the session (and its receipt) that `smp run` recorded.
# Every page not named here is in the last group, so a new page is never left out.
GROUPS: dict[str, tuple[str, ...]] = {
    "calibrate": ("calibrate", "calibrations"),
    "demo": ("demo",),
    "run-sessions": ("run", "sessions", "replay"),
    # the pages whose examples reach real-time `smp sim` processes (over a pty or TCP)
    "pen-processes": ("sim", "info", "monitor"),
}
REST = "the-rest"
# Pages whose `smp calibrate` on a real-time pen process (5 s of its time) runs beside the
# group's other pages (4-5 s of work), as a process (about 1 s of imports); such a page runs
# first in its group. (`smp calibrate`'s own has too little beside it.)
OVERLAPPED = ("sim",)


def pages_of(group: str) -> list[tuple[str, ...]]:
    if group == REST:
        named = {page for pages in GROUPS.values() for page in pages}
        return sorted((path for path in _pages(main) if path[0] not in named),
                      key=lambda path: path[0] not in OVERLAPPED)
    order = GROUPS[group]
    return sorted((path for path in _pages(main) if path[0] in order),
                  key=lambda path: (order.index(path[0]), path))


def test_every_page_is_in_exactly_one_group():
    seen = [path for group in [*GROUPS, REST] for path in pages_of(group)]
    assert sorted(seen) == sorted(_pages(main))
    assert len(set(seen)) == len(seen)
    assert all(pages_of(group) for group in [*GROUPS, REST])  # no stale group names


# `smp calibrate --auto` against a real-time `smp sim` process: beside two busy loops and four
# workers the pen process went unscheduled through a NEEDLE_STOP's four tries (CI, session 20),
# so that group runs in the realtime pass, as the other wall-time pen processes do; and so do
# the pages whose examples calibrate, inform and monitor over `smp sim`'s pty and TCP.
REALTIME_GROUPS = ("calibrate", "pen-processes")


@pytest.mark.parametrize("group", [pytest.param(g, marks=pytest.mark.realtime)
                                   if g in REALTIME_GROUPS else g for g in [*GROUPS, REST]])
def test_every_help_example_runs(group, scenario):
    ran, failed = 0, []
    for path in pages_of(group):
        commands = examples(path)
        if not commands:
            continue
        cwd = scenario.workdir(path)
        for shown in commands:
            if shown in NOT_RUN or shown.startswith("smp sim "):  # the sim runs already
                continue
            command, forever = scenario.concrete(shown, cwd)
            if scenario.overlapped(path, shown, command, cwd) is not None:
                continue  # its result is checked below, once the other pages ran
            if forever:  # a real `smp` process: the entry point, and Ctrl-C, as a user has them
                if scenario.first_time(command):  # made concrete, two examples can be one line
                    Background(command, scenario.env, cwd, 1).stop()
                ran += 1
                continue
            status, out, err = shell.run(command, cwd, scenario.env)  # smp in-process
            status, out, err, command = again_if_stalled(scenario, shown, command, cwd,
                                                         scenario.env, (status, out, err))
            if status != 0:
                failed.append(failure(path, shown, command, status, out, err))
            receipt = re.search(r"SMP-RECEIPT/1 \S+ #\d+ \S+(?:\s+\S+)?", out)
            if receipt:
                scenario.receipt = " ".join(receipt.group(0).split())
            ran += 1
    for started in scenario.overlapping:
        status, out, err, command = again_if_stalled(scenario, started.shown, started.command,
                                                     started.cwd, started.env, started.result())
        if status != 0:
            failed.append(failure(started.path, started.shown, command, status, out, err))
        ran += 1
    assert not failed, "\n\n".join(failed)
    assert ran > 0  # (all groups together: test_the_help_examples_are_found)


def again_if_stalled(scenario: Scenario, shown: str, command: str, cwd: Path,
                     env: dict[str, str], done: tuple[int, str, str]
                     ) -> tuple[int, str, str, str]:
    """(status, stdout, stderr, command) of an example; once more, in this process and on fresh
    pens, if a real-time pen's fail-safe ended it.

    A real-time `smp sim` pen stopped itself: the host (beside other workers on loaded cores)
    was stalled longer than the lease. Or the link gave up: that pen's process was stalled past
    the host's four tries (about 0.3 s; `smp calibrate --auto`'s NEEDLE_STOP at load 15-23).
    The fail-safe, not the example."""
    status, out, err = done
    if status != 0 and ("(LEASE_EXPIRED)" in out + err or "no reply from the pen to" in out + err):
        scenario.restart_pens()
        command, _ = scenario.concrete(shown, cwd)
        status, out, err = shell.run(command, cwd, env)
    return status, out, err, command


def failure(path: tuple[str, ...], shown: str, command: str, status: int, out: str,
            err: str) -> str:
    return (f"`smp {' '.join(path)} --help` shows `{shown}`; as `{command}` it exited "
            f"{status}\n{out[-800:]}\n{err[-1600:]}")
