"""Review 17 (tech): the calibration Python API as docs/integration.md promises it.

1. The docs named `smpdevice.calibrate.run_calibration`: no such module. Every dotted
   `smpdevice....run_calibration` the docs name must import.
2. "`InvalidArgument` (`checks`) | an argument of a public call is of the wrong type ...":
   `CalibrationStore.get(["x"])` said the database was damaged ("restore it from a backup"),
   `latest_valid(5)` answered None (as for a pen with no calibration), and a naive `now` was
   read as UTC although the check says "a timezone-aware datetime"."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.checks import InvalidArgument
from smpdevice.control.calibration import Calibration
from tests.smpdevice.conftest import STATION_SPEED_CHECK

ROOT = Path(__file__).resolve().parents[3]
SERIAL = "SMP-1VZJYZSI"


def test_every_documented_run_calibration_can_be_imported():
    named = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= set(re.findall(r"`(smpdevice(?:\.\w+)+)\.run_calibration`", doc.read_text()))
    assert "smpdevice.calibration.workflow" in named, named
    for module in sorted(named):
        assert callable(importlib.import_module(module).run_calibration), module


@pytest.fixture
def store(tmp_path):
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    points = [(0.5, 0.3), (1.0, 0.8), (2.0, 1.8)]  # exactly offset -0.2, gain 1.0
    store.save(Calibration.linear(pen_serial=SERIAL, technician="ana",
                                  offset_mm=-0.2, gain=1.0, points=points,
                                  **STATION_SPEED_CHECK))
    return store


@pytest.mark.parametrize(("call", "named"), [
    (lambda s: s.get(["x"]), "calibration_id"),  # was: "damaged ... restore from a backup"
    (lambda s: s.entry(5), "calibration_id"),
    (lambda s: s.latest_valid(5), "pen_serial"),  # was: None, "calibrate first"
    (lambda s: s.latest(b"SMP-1VZJYZSI"), "pen_serial"),
    (lambda s: s.list(5), "pen_serial"),
    (lambda s: s.entries(pen_serial=[SERIAL]), "pen_serial"),
    (lambda s: s.list(SERIAL, limit="3"), "limit"),
    (lambda s: s.list(limit=True), "limit"),
    (lambda s: s.list(limit=-1), "limit"),
    (lambda s: s.latest_valid(SERIAL, "2026-12-01"), "now"),
    (lambda s: s.latest_valid(SERIAL, datetime(2026, 12, 1)), "now"),  # naive: was read as UTC
], ids=["get-list", "entry-int", "latest_valid-int", "latest-bytes", "list-int",
        "entries-list", "limit-text", "limit-bool", "limit-negative", "now-text", "now-naive"])
def test_a_read_with_an_argument_of_the_wrong_kind_is_an_invalid_argument(store, call, named):
    with pytest.raises(InvalidArgument) as err:
        call(store)
    assert str(err.value).startswith(f"{named}="), err.value


def test_the_reads_still_answer_what_they_answered(store):
    cal = store.latest(SERIAL)
    assert cal is not None and store.get(cal.calibration_id) == cal
    assert store.latest_valid(SERIAL, datetime.now(UTC)) == cal == store.list(SERIAL, 1)[0]
    assert store.list(limit=2**70) == [cal]  # more than SQLite's LIMIT: all
    assert store.list("SMP-NONE0000") == [] and store.latest_valid("SMP-NONE0000") is None
