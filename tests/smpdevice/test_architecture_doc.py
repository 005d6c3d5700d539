"""docs/architecture.md names only what exists: every path, and the names it says to extend."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PATHS = sorted({p for p in re.findall(r"`([\w./]+)`", DOC) if "/" in p and not p.endswith("://")}
               | set(re.findall(r"^\s+((?:smpdevice|firmware_protocol|simulators)/[\w/.]*)", DOC,
                                re.M)))


def test_the_page_names_paths():
    assert len(PATHS) > 30
    assert {"smpdevice/link/", "smpdevice/control/", "smpdevice/calibration/",
            "smpdevice/records/", "smpdevice/cli/", "smpdevice/ui/"} <= set(PATHS)


def test_every_named_path_exists():
    """One test over the 140-odd paths: as one test per path, pytest-xdist's cost per test was
    most of their CPU."""
    missing = [path for path in PATHS if not (ROOT / path).exists()]
    assert missing == [], f"docs/architecture.md names {missing}, which do not exist"


@pytest.mark.parametrize(("module", "name"), [
    ("firmware_protocol.messages", "message"),
    ("firmware_protocol.codes", "MsgType"),
    ("simulators.faults", "DeviceFault"),
    ("simulators.faults", "apply_device_fault"),
    ("simulators.faults", "LinkFaults"),
    ("simulators.faults", "parse_fault_spec"),
    ("smpdevice.cli", "COMMANDS"),
    ("smpdevice.records.store", "RecordStore"),
    ("smpdevice.control.aio", "AsyncPenController"),
    ("smpdevice.control.states", "POLICY"),
    ("smpdevice.link.engine", "RequestEngine"),
    ("smpdevice.link.clock", "Clock"),
    ("smpdevice.link.items", "Operation"),
])
def test_the_names_it_says_to_extend_exist(module, name):
    assert f"`{name}" in DOC or name in DOC
    assert hasattr(importlib.import_module(module), name)
