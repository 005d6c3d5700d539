"""Review 12 (REVG-9, REVG-6): the installation key's first use, and no home directory.

docs/safety.md: the key is "`$SMP_KEY_DIR`, else `~/.config/smpdevice` ... 0600, made on first
use"; README: errors a user can cause are one line saying what to do, never a traceback.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.config import config_path
from smpdevice.paths import data_dir
from smpdevice.records.keys import KEY_FILE_NAME, InstallationKey, InstallationKeyError, key_dir

ROOT = Path(__file__).resolve().parents[3]  # this tree's smpdevice, in the child too


def _first_uses_at_once(where: Path, callers: int) -> list[str]:
    barrier = threading.Barrier(callers)
    got: list[str] = []

    def first_use() -> None:
        barrier.wait()
        try:
            got.append(InstallationKey.load_or_create(where).fingerprint)
        except Exception as exc:  # what a caller would have seen
            got.append(f"error: {exc}")

    threads = [threading.Thread(target=first_use) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_first_uses_at_once_all_get_the_one_complete_key(tmp_path):
    """The loser of the race loads the winner's key, never a file not yet written."""
    for trial in range(25):
        where = tmp_path / f"k{trial}"
        got = _first_uses_at_once(where, callers=4)
        assert len(set(got)) == 1 and not got[0].startswith("error"), got
        assert sorted(p.name for p in where.iterdir()) == [KEY_FILE_NAME]  # no temporary left
        assert (where / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600


def _tiny_tmpfs(base: Path, size: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = base / f"tiny-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    return where


def test_a_full_disk_at_the_first_use_leaves_no_key_file(tmp_path):
    """A key that could not be written is not there at all, so the next use, with space
    freed, makes one: never an empty file called damaged forever after."""
    disk = _tiny_tmpfs(tmp_path, "16k")
    try:
        keys = disk / "keys"
        keys.mkdir()
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:  # to the last byte
            for chunk in (4096, 1):
                try:
                    while True:
                        f.write(b"\0" * chunk)
                except OSError:
                    pass
        with pytest.raises(InstallationKeyError, match="No space left"):
            InstallationKey.load_or_create(keys)
        assert list(keys.iterdir()) == []
        filler.unlink()
        made = InstallationKey.load_or_create(keys)
        assert InstallationKey.load_or_create(keys).fingerprint == made.fingerprint
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_an_empty_key_file_says_it_was_never_written(tmp_path):
    """A key file an older version left empty: the line says what it is and what to do."""
    (tmp_path / KEY_FILE_NAME).write_bytes(b"")
    with pytest.raises(InstallationKeyError) as caught:
        InstallationKey.load_or_create(tmp_path)
    assert "never written" in str(caught.value) and "delete the file" in str(caught.value)


# ------------------------------------------------------------------ no home directory
@pytest.fixture
def homeless(monkeypatch):
    """HOME unset and no passwd entry for this uid (a container's --user N)."""
    monkeypatch.delenv("HOME", raising=False)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)


def test_every_default_under_home_is_one_clear_error(homeless, monkeypatch):
    from smpdevice.config import HomeDirError, home_dir

    for name in ("SMP_CONFIG", "SMP_DATA_DIR", "SMP_KEY_DIR"):
        monkeypatch.delenv(name, raising=False)
    for where in (home_dir, config_path, data_dir, key_dir):
        with pytest.raises(HomeDirError, match="SMP_DATA_DIR and SMP_KEY_DIR"):
            where()
    monkeypatch.setenv("SMP_DATA_DIR", "~/smp")
    with pytest.raises(HomeDirError):
        data_dir(create=False)


# (`smp config show` and `check` describe a station without a home too: review 12, REV3B-3)
@pytest.mark.parametrize("args", [["sessions", "list"], ["keys", "show"]])
def test_commands_without_a_home_say_so_in_one_line(homeless, monkeypatch, args):
    for name in ("SMP_CONFIG", "SMP_DATA_DIR", "SMP_KEY_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: cannot find this user's home directory"), \
        result.output


def test_the_variables_readme_names_are_enough_without_a_home(homeless, tmp_path,
                                                              monkeypatch):
    """SMP_DATA_DIR, SMP_KEY_DIR (SMP_CONFIG unset: no config file can be under no home)."""
    monkeypatch.delenv("SMP_CONFIG", raising=False)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    result = CliRunner().invoke(main, ["keys", "show"])
    assert result.exit_code == 0, result.output
    assert data_dir() == tmp_path / "data"


def test_a_real_process_without_a_home_is_one_line(tmp_path):
    """The same as a real process run as a uid the system has no entry for."""
    uid = 54321
    if os.geteuid() != 0:
        pytest.skip("needs root to run as a user without a passwd entry")
    try:
        pwd.getpwuid(uid)
        pytest.skip(f"uid {uid} has a passwd entry here")
    except KeyError:
        pass
    smp = str(Path(sys.executable).with_name("smp"))
    if not all(_others_can_enter(p) for p in (Path(smp), ROOT)):
        pytest.skip("the checkout is not reachable by another user (a 0700 directory above it)")
    done = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           smp, "sessions", "list"], cwd="/",
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: cannot find this user's home directory"), done.stderr


def _others_can_enter(path: Path) -> bool:
    """Whether a user without any of this one's rights can reach `path` (each directory above
    it searchable by others)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.resolve().parents)
