"""A station of a test's own for the central-store tests: its data and key directories
(SMP_DATA_DIR, SMP_KEY_DIR under tmp_path), and a signed pass log in it when asked."""

from __future__ import annotations

from pathlib import Path

import pytest


def station_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory (made), its key directory beside it (0700); both in the env."""
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir(mode=0o700)
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    return data


def station_with_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     sessions: int = 2) -> Path:
    """`station_dirs` holding passlog.sqlite of `sessions` sessions, signed by its own key."""
    from smpdevice.records.keys import InstallationKey
    from tests.smpdevice.records.test_records_central import make_log

    data = station_dirs(tmp_path, monkeypatch)
    make_log(data / "passlog.sqlite", sessions=sessions, key=InstallationKey.load_or_create())
    return data
