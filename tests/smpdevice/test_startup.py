"""What an `smp` process imports before it does its work (issue 13: start-up).

Each `smp` command is a new Python process; what it imports and never uses is paid at every
command (and by every process the tests start). These run real processes and look at
`sys.modules`: no timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest

from smpdevice import checks
from smpdevice.service import line_ranges

# Imported only by the commands that use them: pydantic, sqlite3, the controller, the service.
# structlog (and with it rich and asyncio) loads with every command's log set-up: deferring it
# took an import hook that missed a probe, a racing import or a restored sys.meta_path.
HEAVY = ("structlog", "rich", "pydantic", "asyncio", "sqlite3", "hypothesis", "websockets",
         "smpdevice.control.controller", "smpdevice.link.wire", "smpdevice.service.server")


def _loaded_after(code: str, timeout_s: float = 120) -> tuple[set[str], str]:
    """Run `code` in a fresh interpreter; the modules loaded when it ended, and its stdout."""
    probe = (code + "\nimport json as _j, sys as _s\n"
             "print('MODULES=' + _j.dumps(sorted(_s.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    lines = done.stdout.splitlines()
    assert lines and lines[-1].startswith("MODULES="), done.stderr[-2000:]
    return set(json.loads(lines[-1][len("MODULES="):])), "\n".join(lines[:-1])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in HEAVY if m in modules)


def _cli(*args: str) -> str:
    return ("import sys\nfrom smpdevice.cli import main\nsys.argv[0] = 'smp'\n"
            f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n")


@pytest.mark.parametrize("args", [("sim", "--help"), ("run", "--help"), ("serve", "--help"),
                                  ("protocol", "decode", "01"), ("config", "show")])
def test_a_command_that_needs_no_pen_loads_no_models_or_store(args):
    modules, _out = _loaded_after(_cli(*args))
    assert not {"pydantic", "sqlite3", "hypothesis"} & modules, _heavy(modules)
    assert "smpdevice.logs" in modules  # the set-up did run


def test_a_simulator_starts_without_the_host_stack():
    """`smp sim` (about one in seven of the processes the tests start) serves its pen with
    the simulator and the CLI alone."""
    code = (
        "import io, os, signal, sys, threading\n"
        "from smpdevice.cli import main\n"
        "up = threading.Event()\n"
        "class Out(io.StringIO):\n"
        "    def write(self, text):\n"
        "        if 'socket://' in text:\n"
        "            up.set()\n"
        "        sys.__stdout__.write(text)\n"
        "        return len(text)\n"
        "sys.stdout = Out()\n"
        # Ctrl-C once it serves, as a person would.
        "threading.Thread(target=lambda: up.wait(100) and os.kill(os.getpid(), "
        "signal.SIGINT), daemon=True).start()\n"
        "try:\n"
        "    main(['sim', '--tcp', '0'], prog_name='smp')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout = sys.__stdout__\n"
    )
    modules, out = _loaded_after(code)
    assert "socket://127.0.0.1:" in out
    assert [m for m in _heavy(modules) if m not in ("structlog", "rich", "asyncio")] == []


def test_the_controllers_values_load_without_the_controller():
    """A service client (`smp calibrate --service`) needs the calibration value and the
    host's clock, not the controller, the wire, structlog or rich."""
    modules, _out = _loaded_after(
        "from smpdevice.control.calibration import Calibration\n"
        "from smpdevice.link.clock import MONOTONIC\n")
    assert not {"smpdevice.control.controller", "smpdevice.link.wire", "smpdevice.link.engine",
                "structlog", "rich"} & modules


def test_the_packages_names_still_import_from_the_package():
    modules, out = _loaded_after(
        "from smpdevice.control import PenController, State, DEFAULT_LEASE_MS\n"
        "from smpdevice.link import Link, MONOTONIC, Notifier\n"
        "import smpdevice.control as c\n"
        "print(PenController.__module__, State.__module__, Link.__module__, "
        "c.PenController is PenController, 'PenController' in dir(c))\n"
        "try:\n"
        "    c.NoSuchName\n"
        "except AttributeError as e:\n"
        "    print('AttributeError', e)\n")
    assert out.splitlines() == [
        "smpdevice.control.controller smpdevice.control.states smpdevice.link.wire True True",
        "AttributeError module 'smpdevice.control' has no attribute 'NoSuchName'"]
    assert "structlog" in modules  # the controller logs: it did load it


def test_e_stop_through_a_service_loads_no_controller():
    """`smp estop --service URL` talks JSON-RPC; the pen's controller is the service's."""
    modules, _out = _loaded_after(_cli("estop", "--service", "ws://127.0.0.1:9/rpc"))
    assert "smpdevice.service.client" in modules  # it did try the service
    assert not {"smpdevice.control.controller", "pydantic"} & modules


def test_the_published_line_pattern_is_not_scanned_at_import():
    """service/schema.py takes the one-line rule's code point ranges as stored (a scan of
    500,000 code points was 0.1-0.3 s of every `smp serve`'s start)."""
    modules, out = _loaded_after(
        "from smpdevice import checks\n"
        "from smpdevice.service import schema\n"
        "print(checks.blank_ranges.cache_info().currsize, "
        "checks.unassigned_ranges.cache_info().currsize)\n")
    assert "smpdevice.service.schema" in modules
    if unicodedata.unidata_version == line_ranges.UNIDATA_VERSION:
        assert out == "0 0"


@pytest.mark.skipif(unicodedata.unidata_version != line_ranges.UNIDATA_VERSION,
                    reason="stored for another version of the Unicode tables (the scan is used)")
def test_the_stored_line_ranges_are_the_scan():
    """After a change to checks.py's rule: `python -m smpdevice.service.line_ranges`."""
    assert line_ranges.ranges() == (checks.blank_ranges(), checks.unassigned_ranges())


def test_other_unicode_tables_are_scanned(monkeypatch):
    monkeypatch.setattr(line_ranges, "UNIDATA_VERSION", "0.0.0")
    assert line_ranges.ranges() == (checks.blank_ranges(), checks.unassigned_ranges())
