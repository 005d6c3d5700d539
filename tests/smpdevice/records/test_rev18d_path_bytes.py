"""rev18d (review 18h, b18h).
a path-like whose __fspath__ gives bytes (accepted by the type check,
os.PathLike) raised a bare TypeError from `PassLog` (path_argument's NUL check: `"\\0" in
bytes`) and `load_file` (Path(...)), not InvalidArgument (docs/integration.md, errors table:
"an argument of a public call is of the wrong type ... InvalidArgument"). Real SQLite."""

from __future__ import annotations

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.checks import InvalidArgument
from smpdevice.loader import load_file
from smpdevice.passlog import PassLog


class BytesPath:
    def __init__(self, raw: bytes):
        self.raw = raw

    def __fspath__(self) -> bytes:
        return self.raw


def test_a_pathlike_giving_bytes_is_refused_by_name(tmp_path):
    where = bytes(tmp_path / "passlog.sqlite")
    with pytest.raises(InvalidArgument, match="path"):  # was: TypeError, a bytes-like object
        PassLog(BytesPath(where))
    assert not (tmp_path / "passlog.sqlite").exists()


def test_the_calibration_store_and_the_loader_refuse_it_by_name_too(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("name: x\n")
    with pytest.raises(InvalidArgument, match="bytes"):  # was: TypeError from Path()
        load_file(BytesPath(bytes(profile)))
    with pytest.raises(InvalidArgument, match="bytes"):
        CalibrationStore(BytesPath(bytes(tmp_path / "calibrations.sqlite")))
    assert not (tmp_path / "calibrations.sqlite").exists()
    assert load_file(profile) == {"name": "x"}  # a str path still reads
