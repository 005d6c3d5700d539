"""Review 18c (1): a kept calibration file edited and re-summed (plain SHA-256, no key: depth
checks 0.3 mm off, rates 30 % off, `simulated` false) was imported as the pen's valid
calibration. Now the file is signed with the installation key (the pass log's Ed25519 key):
an edited file, one of another installation and one where this machine has no key are refused,
nothing changed. And the import re-runs every check of the station's save that needs no pen
(`savable.check_recorded`, shared with the service's `check_evidence`): a calibration signed
here whose depth checks or rates fail the run's bounds is refused too. Real runs on a
virtual-clock simulated pen, real SQLite, real keys."""

from __future__ import annotations

import hashlib
import json

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.unsaved import write_unsaved
from smpdevice.control.calibration import Calibration
from smpdevice.records.keys import InstallationKey
from tests.smpdevice.cli._kept_unsaved import SIM_RANGE_HZ, kept_file, real_calibration, smp


def _worse(cal: dict) -> None:
    cal["depth_checks"] = [[t, round(t + 0.3, 4)] for t, _ in cal["depth_checks"]]
    cal["rate_checks"] = [[s, m * 1.3] for s, m in cal["rate_checks"]]
    cal["simulated"] = False


def _stored(data, serial):
    path = data / "calibrations.sqlite"
    return CalibrationStore(path, readonly=True).list(serial) if path.exists() else []


def test_an_edited_and_resummed_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path, serial = kept_file(tmp_path)
    doc = json.loads(path.read_text())
    _worse(doc["calibration"])
    body = {k: v for k, v in doc.items() if k not in ("sha256", "signature")}
    doc["sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                                   .encode()).hexdigest()  # as anyone can, without the key
    path.write_text(json.dumps(doc, indent=2))
    result = smp("calibrations", "import", str(path), "--pen", serial)
    assert result.exit_code == 2 and "edited or damaged" in result.output, result.output
    assert _stored(tmp_path, serial) == [] and path.exists()


@pytest.mark.parametrize(("field", "names"), [
    ("depth_checks", "calibration.depth_checks are refused"),
    ("rate_checks", "calibration.rate_checks are refused"),
])
def test_a_signed_calibration_that_fails_the_saves_checks_is_refused(tmp_path, monkeypatch,
                                                                      field, names):
    """Signed here (a bug, or anyone with the key): the save's own checks still refuse it."""
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    good = real_calibration(tmp_path)
    worse = good.model_dump(mode="json")
    _worse(edited := dict(worse))
    worse[field] = edited[field]
    path = write_unsaved(Calibration.model_validate(worse), SIM_RANGE_HZ, tmp_path)
    result = smp("calibrations", "import", str(path), "--pen", good.pen_serial)
    assert result.exit_code == 2 and names in result.output, result.output
    assert "Nothing was saved" in result.output
    assert _stored(tmp_path, good.pen_serial) == [] and path.exists()
    # the run's own calibration, kept the same way, passes the same checks
    path = write_unsaved(good, SIM_RANGE_HZ, tmp_path)
    done = smp("calibrations", "import", str(path), "--pen", good.pen_serial)
    assert done.exit_code == 0, done.output
    assert [c.calibration_id for c in _stored(tmp_path, good.pen_serial)] == [
        good.calibration_id]


def test_only_the_installation_that_made_it_imports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path, serial = kept_file(tmp_path)
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "no-key-here"))
    result = smp("calibrations", "import", str(path), "--pen", serial)
    assert result.exit_code == 2 and "has no installation key" in result.output, result.output
    assert not (tmp_path / "no-key-here").exists()  # checking makes no key
    InstallationKey.load_or_create(tmp_path / "other")  # another installation's key
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "other"))
    result = smp("calibrations", "import", str(path), "--pen", serial)
    assert result.exit_code == 2 and "another installation" in result.output, result.output
    assert _stored(tmp_path, serial) == [] and path.exists()
    assert not (tmp_path / "calibrations.sqlite").exists()
