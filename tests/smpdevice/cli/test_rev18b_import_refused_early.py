"""Review 18c (3, 4, 7): a refused `smp calibrations import` changes nothing, yet `import ""`
(taken as ".") and a missing FILE each created an empty calibrations.sqlite (the store was
opened to write before FILE was read); a file holding a >4,300-digit number was a traceback
(Python's int-string limit is a plain ValueError), exit 1; `--pen ""` gave a garbled sentence
("not ; ... calibrate pen "). Now FILE, pen and expiry are checked before the store is opened;
a blank FILE or --pen is refused by name, a huge number as damaged (exit 2)."""

from __future__ import annotations

import pytest

from tests.smpdevice.cli._kept_unsaved import kept_file, smp


@pytest.mark.parametrize(("file", "says"), [
    ("", "no file was given"), (" ", "no file was given"),
    ("no-such-unsaved-calibration.json", "does not exist"), (".", "is not a file"),
])
def test_a_refused_import_creates_no_database(tmp_path, monkeypatch, file, says):
    data = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    result = smp("calibrations", "import", file, "--pen", "SMP-1VZJYZSI")
    assert result.exit_code == 2 and says in result.output, result.output
    assert "a new one is created" not in result.output
    assert not data.exists(), sorted(p.name for p in data.iterdir())


def test_a_refused_import_of_a_real_file_opens_no_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path, _ = kept_file(tmp_path)
    result = smp("calibrations", "import", str(path), "--pen", "SMP-OTHER001")
    assert result.exit_code == 2 and "not SMP-OTHER001" in result.output, result.output
    assert not (tmp_path / "calibrations.sqlite").exists() and path.exists()


def test_a_file_with_a_huge_integer_is_refused_as_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path = tmp_path / "unsaved-calibration-x.json"
    path.write_text('{"format": "smpdevice-unsaved-calibration", "version": ' + "1" * 5000 + "}")
    result = smp("calibrations", "import", str(path), "--pen", "SMP-1VZJYZSI")
    assert result.exit_code == 2 and "is damaged" in result.output, (
        result.exit_code, repr(result.exception))
    assert not (tmp_path / "calibrations.sqlite").exists()


@pytest.mark.parametrize("pen", ["", "  "])
def test_a_blank_pen_is_refused_as_no_pen_given(tmp_path, monkeypatch, pen):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path, _ = kept_file(tmp_path)
    result = smp("calibrations", "import", str(path), "--pen", pen)
    assert result.exit_code == 2, result.output
    assert "not ;" not in result.output and "no pen serial was given" in result.output, (
        result.output)
    assert path.exists() and not (tmp_path / "calibrations.sqlite").exists()


def test_a_pen_holding_a_newline_is_named_on_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    path, serial = kept_file(tmp_path)
    result = smp("calibrations", "import", str(path), "--pen", serial + "\nX")
    assert result.exit_code == 2 and repr(serial + "\nX") in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
