"""Every ```python block in README.md and docs/*.md runs (issue 16, item 1).

The blocks of one document run in order in one namespace, as a reader pasting them one after
the other would, from the repository root, with a fresh data directory, on the built-in
simulator. Markers, an HTML comment on the line just before a block:

- `<!-- needs: pen -->`: the block names a real port (/dev/ttyACM0, usb:SERIAL, COM3); it runs
  with `pensim://` in its place.
- `<!-- needs: calibration -->`: the block follows the page's `smp calibrate --port pensim://
  --auto`; that command runs first in the page's data directory.
- `<!-- not-run: reason -->`: an illustrative fragment that cannot run alone; keep these rare.

A block that defines pytest tests (`def test_...`) is run by pytest, in a file of its own. A
program listed in full (`#!...`) must be a file of examples/, verbatim; its definitions run here
and tests/smpdevice/test_examples.py runs the program itself.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:<!--\s*(?P<mark>needs|not-run):\s*(?P<why>[^>]*?)\s*-->\s*\n)?"
    r"^```python[^\n]*\n(?P<code>.*?)^```", re.S | re.M)
REAL_PORT = re.compile(r"""(["'])(?:/dev/tty\w+|usb:[\w-]+|COM\d+)\1""")


def blocks(page: Path) -> list[tuple[int, str | None, str, str]]:
    text = page.read_text(encoding="utf-8")
    return [(text[:m.start("code")].count("\n") + 1, m["mark"], m["why"] or "", m["code"])
            for m in BLOCK.finditer(text)]


def test_the_python_blocks_are_found_and_not_run_stays_rare():
    found = [b for p in PAGES for b in blocks(p)]
    assert len(found) >= 8
    skipped = [b for b in found if b[1] == "not-run"]
    assert len(skipped) <= 2, skipped
    assert all(len(why) >= 10 for _, _, why, _ in skipped)  # each one says why


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")  # pensim:// on virtual time (simulator.md)
    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": f"doc_{page.stem}"}
    try:
        for line, mark, why, code in blocks(page):
            if mark == "not-run":
                continue
            if mark == "needs":
                assert why in ("pen", "calibration"), f"{page.name}:{line}: need {why!r}?"
                if why == "pen":
                    code = REAL_PORT.sub('"pensim://"', code)
                else:
                    _calibrate_the_simulator()
            if re.search(r"^def test_", code, re.M):
                _run_as_pytest(page, line, code, tmp_path)
                continue
            if code.startswith("#!"):  # a whole program: it is a file of the repository
                namespace["__file__"] = str(_the_file_holding(code))
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name}, the block at line {line} fails: "
                                     f"{type(exc).__name__}: {exc}") from exc
    finally:
        _close_what_the_page_opened(namespace)


def _the_file_holding(code: str) -> Path:
    """The repository file a program listed in full is (tests/test_examples.py runs it)."""
    for path in (ROOT / "examples").glob("*.py"):
        if path.read_text(encoding="utf-8") == code:
            return path
    raise AssertionError("a program listed in full must be a file of examples/, verbatim")


def _calibrate_the_simulator() -> None:
    """`smp calibrate --port pensim:// --auto`, as the reader did (the same simulated pen)."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    result = CliRunner().invoke(main, ["calibrate", "--port", "pensim://", "--auto", "-t", "doc"])
    assert result.exit_code == 0, result.output


def _run_as_pytest(page: Path, line: int, code: str, tmp_path: Path) -> None:
    test_file = tmp_path / f"test_doc_{page.stem}_{line}.py"
    test_file.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(test_file)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{page.name}:{line}\n{result.stdout[-3000:]}"


def _close_what_the_page_opened(namespace: dict) -> None:
    for value in list(namespace.values()):
        close = getattr(value, "close", None)
        if callable(close) and type(value).__module__.startswith(("smpdevice", "simulators")):
            with contextlib.suppress(Exception):  # already closed, or half made
                close()
