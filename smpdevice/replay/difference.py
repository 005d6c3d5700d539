"""The first place a replay departs from its recording, as `smp replay` names it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    """The first place a replay departs from the recording."""

    what: str  # "command", "end", "state", "pass"
    index: int  # decision (frame) index, state change index, or pass index
    t_s: float  # seconds since the session's recording began
    expected: str
    got: str
    part: str = ""  # of a resumed session: which recorded part ("part 2 (file)")

    def __str__(self) -> str:
        when = "" if self.what == "pass" else f" at t={self.t_s:.3f} s"
        where = f"{self.part}: " if self.part else ""
        return (f"first difference: {where}{self.what} #{self.index}{when}: "
                f"expected {self.expected}; got {self.got}")


def same_message(a: object, b: object) -> bool:
    return type(a) is type(b) and a.to_dict() == b.to_dict()  # type: ignore[attr-defined]
