"""A file path holding a NUL character (a path built from scanned or pasted text) reaches
`open()` unchecked: `PassLog.open` raised a bare `ValueError: embedded null
byte` instead of its documented error.

Promised: docs/integration.md "Errors": "Every error a user or an integrator can cause is an
`smpdevice.errors.SmpError` subclass with a message that says what to do"; "Files: how they are
read": `load_file` "returns plain data or raises `LoadError`"; "Treatment profiles":
`load_profile` "raises one `ProfileError` listing every issue".
"""

from __future__ import annotations

import pytest

from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog


def nul_path(tmp_path) -> str:
    return str(tmp_path / "profile\0.yaml")


def test_a_pass_log_path_with_a_nul_is_an_smp_error(tmp_path):
    """The other readers: tests/smpdevice/test_rev18_nul_path.py."""
    with pytest.raises(SmpError, match="NUL"):
        PassLog.open(nul_path(tmp_path))
    assert list(tmp_path.iterdir()) == []
