"""Review 18b (finding 9): reading the installation key chmodded its folder 0700 on every read,
also when the key file was already 0600: `smp keys show` (a reader) with SMP_KEY_DIR=$HOME made
the user's home 0700. Now only a writer, and only for a key file others can read, tightens:
the file 0600, its folder 0700 unless that is the home directory, `/` or not the user's; one
`warning:` line says what was done."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records.keys import KEY_FILE_NAME, InstallationKey


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keys_show_leaves_the_key_and_its_folder_as_they_are(tmp_path, monkeypatch):
    home = tmp_path / "home"
    InstallationKey.load_or_create(home)  # a 0600 key, made where the user said
    home.chmod(0o755)
    monkeypatch.setenv("SMP_KEY_DIR", str(home))
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    assert CliRunner().invoke(main, ["keys", "show"]).exit_code == 0
    assert _mode(home) == 0o755  # was: 0o700
    (home / KEY_FILE_NAME).chmod(0o644)  # loose: a reader still changes nothing
    assert CliRunner().invoke(main, ["keys", "show"]).exit_code == 0
    assert (_mode(home / KEY_FILE_NAME), _mode(home)) == (0o644, 0o755)


def test_a_writer_tightens_a_loose_key_but_never_the_home_folder(
        tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    InstallationKey.load_or_create(home)
    monkeypatch.setenv("HOME", str(home))
    home.chmod(0o755)
    (home / KEY_FILE_NAME).chmod(0o644)
    InstallationKey.load_or_create(home)  # what a writer's open does
    assert (_mode(home / KEY_FILE_NAME), _mode(home)) == (0o600, 0o755)
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "made 0600" in said and "directory" not in said, said
    keys = home / "keys"  # a folder of its own: made private with it, and said so
    InstallationKey.load_or_create(keys)
    keys.chmod(0o755)
    (keys / KEY_FILE_NAME).chmod(0o640)
    InstallationKey.load_or_create(keys)
    assert (_mode(keys / KEY_FILE_NAME), _mode(keys)) == (0o600, 0o700)
    assert f"its directory {keys} 0700 (was 755)" in capsys.readouterr().err
    InstallationKey.load_or_create(keys)  # private already: nothing done, nothing said
    assert capsys.readouterr().err == ""
