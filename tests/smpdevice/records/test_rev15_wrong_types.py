"""Public calls of the API given an argument of the wrong type raise bare AttributeError,
TypeError or ValueError (or, worse, answer nonsense) instead of a typed `SmpError`.

Promised: docs/integration.md "Errors": "Every error a user or an integrator can cause is an
`smpdevice.errors.SmpError` subclass with a message that says what to do", and
`InvalidArgument`: "an argument of a public call is of the wrong type ... named in the message".
Found (review 15): each case below; `check_profile(profile, "zones.yaml")` (a path where the
zones belong) even returns issues naming the zones "., a, e, l, m, n, o, s, y, z".
"""

from __future__ import annotations

import io

import pytest

from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog

# The profile, envelope and calibration cases moved to tests/smpdevice/sessions/
# test_rev15_wrong_types.py and tests/smpdevice/calibration/test_rev15_{store_save_checks,
# settings_types}.py (fixer C); these four are the records' (smpdevice/records).


def _cases(tmp_path):
    log = PassLog.open(tmp_path / "passlog.sqlite")
    return log, {
        "PassLog.open(5)": lambda: PassLog.open(5),
        "PassLog.audit(anchors=5)": lambda: log.audit(anchors=5),
        "PassLog.audit(receipts=str)": lambda: log.audit(receipts="receipt.json"),
        "PassLog.export(out=None)": lambda: log.export("csv", None),
        "PassLog.export(out=BytesIO)": lambda: log.export("csv", io.BytesIO()),
    }


CASES = ["PassLog.open(5)", "PassLog.audit(anchors=5)", "PassLog.audit(receipts=str)",
         "PassLog.export(out=None)", "PassLog.export(out=BytesIO)"]


@pytest.mark.parametrize("case", CASES)
def test_a_wrong_type_is_a_typed_error(tmp_path, case):
    log, cases = _cases(tmp_path)
    try:
        with pytest.raises(SmpError):
            cases[case]()
    finally:
        log.close()


def test_a_str_anchors_path_is_read_as_the_path_it_names(tmp_path):
    """It was read as (source, receipt) pairs of its characters: a bare ValueError."""
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        with pytest.raises(SmpError, match="anchors file .*missing.anchors.jsonl cannot be opened"):
            log.audit(anchors=str(tmp_path / "missing.anchors.jsonl"))
        log.anchors_path.touch()  # no session closed yet: an empty anchors file holds
        assert log.audit(anchors=str(log.anchors_path)).ok  # the log's own, named as a str
