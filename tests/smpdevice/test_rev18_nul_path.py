"""Review 18: a file path holding a NUL character (pasted or scanned text) is refused with the
reader's own error (LoadError, ProfileError, InvalidArgument), saying so on one line, not a
bare `ValueError: embedded null byte`."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.checks import InvalidArgument
from smpdevice.envelope import load_envelope
from smpdevice.errors import SmpError
from smpdevice.loader import LoadError, load_file, read_capped
from smpdevice.sessions.profiles import ProfileError, load_profile
from smpdevice.sessions.screening import load_screening_file


@pytest.fixture(params=["text", "path"])
def nul_path(request, tmp_path):
    path = str(tmp_path / "profile\0.yaml")
    return path if request.param == "text" else Path(path)


def test_load_file_and_read_capped_raise_load_error(nul_path):
    for reader in (load_file, read_capped):
        with pytest.raises(LoadError, match=r"NUL character") as caught:
            reader(nul_path)
        assert "\0" not in str(caught.value) and "\n" not in str(caught.value)


def test_load_profile_raises_profile_error(nul_path):
    with pytest.raises(ProfileError, match="NUL character"):
        load_profile(nul_path)


@pytest.mark.parametrize("reader", [load_envelope, load_screening_file],
                         ids=["load_envelope", "load_screening_file"])
def test_the_other_readers_raise_an_smp_error(nul_path, reader):
    with pytest.raises(SmpError, match="NUL character"):
        reader(nul_path)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_calibration_store_refuses_it_before_anything_is_opened(nul_path, readonly):
    with pytest.raises(InvalidArgument, match="NUL character"):
        CalibrationStore(nul_path, readonly=readonly)
    assert not Path(str(nul_path).split("\0")[0]).exists()
