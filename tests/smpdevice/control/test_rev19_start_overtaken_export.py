"""Review 19 (fixd1): `StartOvertaken`, the error docs/integration.md tells integrators to catch
("`start_needle(unless_stopped_since=...)` ... the needle is not started (`StartOvertaken`, a
`StateError`: decide anew, call it again)"; its exceptions table: "catch the subclasses where
you can act on them"), is not importable from `smpdevice.control`, where every other error of
that table the controller raises (`StateError`, `FootswitchError`, ...) and `PenController`
are."""

from __future__ import annotations

import smpdevice.control as control
from smpdevice.control.states import StartOvertaken, StateError


def test_start_overtaken_is_exported_beside_state_error():
    assert issubclass(StartOvertaken, StateError)
    assert "StateError" in control.__all__ and "FootswitchError" in control.__all__
    assert "StartOvertaken" in control.__all__
    assert getattr(control, "StartOvertaken", None) is StartOvertaken
