"""Review 18e: `PassLog(path)` (the constructor) with a NUL in the path raises InvalidArgument
naming it, as `PassLog.open(path)` does (before: a bare ValueError), and creates nothing."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.passlog import PassLog


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("as_path", [False, True])
def test_passlog_constructor_refuses_a_nul_path_as_invalid_argument(tmp_path, readonly,
                                                                    as_path):
    text = str(tmp_path / "pass\0log.sqlite")
    with pytest.raises(InvalidArgument, match="NUL"):
        PassLog(tmp_path / "pass\0log.sqlite" if as_path else text, readonly=readonly)
    with pytest.raises(InvalidArgument, match="NUL"):
        PassLog.open(text, readonly=readonly)
    assert list(tmp_path.iterdir()) == []  # nothing created
