"""Review 18 (records) findings 6, 7 and `smp keys show`: the installation key stays private.

safety.md: the key is "kept apart from the data directory, 0600" (its directory 0700). A key
restored from a backup as 0644 in a 0755 directory was signed with as it was; a key directory
inside the data directory was taken silently; `smp keys show` made a key on a machine that had
none (an auditor's, whose `verify` then trusted it). Real SQLite, real files, the real CLI."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.keys import KEY_FILE_NAME
from tests.smpdevice.records.test_records_exports import session_by


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_a_session(db: Path) -> None:
    with PassLog(db) as log:  # the writer signs every commit's head with the key
        sid = session_by(log, "ana", "C-1", passes=1)
        log.close_session(sid, closed_at=datetime.now(UTC), summary={"passes": 1})


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604])
def test_a_loose_key_is_made_private_by_the_next_writer(tmp_path, monkeypatch, loose):
    keys = tmp_path / "key"
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    _write_a_session(tmp_path / "data" / "passlog.sqlite")
    key = keys / KEY_FILE_NAME
    assert (_mode(key), _mode(keys)) == (0o600, 0o700)  # as made
    key.chmod(loose)  # restored from a backup by `cp`, say
    keys.chmod(0o755)
    _write_a_session(tmp_path / "data" / "passlog.sqlite")
    assert (_mode(key), _mode(keys)) == (0o600, 0o700)


def test_a_symlinked_loose_key_is_tightened_where_it_is(tmp_path, monkeypatch):
    keys, kept = tmp_path / "key", tmp_path / "vault"
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    _write_a_session(tmp_path / "a.sqlite")
    kept.mkdir(mode=0o700)
    (keys / KEY_FILE_NAME).rename(kept / KEY_FILE_NAME)
    (kept / KEY_FILE_NAME).chmod(0o644)
    (keys / KEY_FILE_NAME).symlink_to(kept / KEY_FILE_NAME)
    _write_a_session(tmp_path / "a.sqlite")
    assert _mode(kept / KEY_FILE_NAME) == 0o600


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root, to act as another user for a moment")
def test_a_loose_key_the_writer_cannot_tighten_is_refused_in_one_line(monkeypatch):
    """Another user's key file, readable by all: nothing is signed with it (exit 2), the
    file is left as it is. (The writer runs with another effective uid for a moment.)"""
    from cryptography.hazmat.primitives import serialization  # noqa: F401 (imported as root)
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: F401

    from smpdevice.records.keys import InstallationKey, InstallationKeyError

    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
                                     prefix="rev18key") as made:
        base = Path(made)
        base.chmod(0o755)
        keys, data = base / "key", base / "data"
        InstallationKey.load_or_create(keys)  # root's key
        keys.chmod(0o755)
        (keys / KEY_FILE_NAME).chmod(0o644)
        data.mkdir()
        os.chown(data, 65534, 65534)
        monkeypatch.setenv("SMP_KEY_DIR", str(keys))
        monkeypatch.setenv("SMP_DATA_DIR", str(data))
        os.seteuid(65534)
        try:
            with pytest.raises(InstallationKeyError) as refused:
                PassLog(data / "passlog.sqlite")
        finally:
            os.seteuid(0)
        said = str(refused.value)
        assert "\n" not in said and "read by others (mode 644)" in said, said
        assert "chmod 600" in said and str(keys / KEY_FILE_NAME) in said, said
        assert refused.value.exit_code == 2
        assert _mode(keys / KEY_FILE_NAME) == 0o644  # not ours: left as it is
        assert not (data / "passlog.sqlite").exists()  # nothing was written


def test_a_key_directory_inside_the_data_directory_is_named_in_one_warning(
        tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    for inside in (data, data / "keys", data / "a" / "b"):
        monkeypatch.setenv("SMP_DATA_DIR", str(data))
        monkeypatch.setenv("SMP_KEY_DIR", str(inside))
        _write_a_session(tmp_path / f"log-{len(inside.parts)}.sqlite")
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "SMP_KEY_DIR" in err, err
        assert str(inside) in err and "inside the data directory" in err, err


@pytest.mark.parametrize("apart", ["data-keys", "keys", "data/../keys"])
def test_a_key_directory_apart_from_the_data_is_taken_without_a_word(
        tmp_path, monkeypatch, capsys, apart):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / apart))
    _write_a_session(tmp_path / "data" / "passlog.sqlite")
    assert "warning" not in capsys.readouterr().err


def test_keys_show_makes_no_key_where_there_is_none(tmp_path, monkeypatch):
    keys = tmp_path / "auditor-keys"
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    result = CliRunner().invoke(main, ["keys", "show"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("No installation key on this machine"), result.output
    shown = json.loads(CliRunner().invoke(main, ["keys", "show", "--json"]).output)
    assert shown["fingerprint"] is None and shown["public_key"] is None
    assert not (keys / KEY_FILE_NAME).exists()
    _write_a_session(tmp_path / "p.sqlite")  # the first session makes it
    shown = json.loads(CliRunner().invoke(main, ["keys", "show", "--json"]).output)
    assert shown["fingerprint"] and len(bytes.fromhex(shown["public_key"])) == 32
