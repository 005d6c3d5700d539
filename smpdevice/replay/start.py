"""The controller's state at a recording's start (`/meta` `start`, session 20).

A session's recording starts at one point (`SessionRecording.begin`): from there every byte and
every state change is recorded. What the controller was then is `start`: `{"state", "reason"}`
(the reason of its latch: fault, E-stop or lost link; None when idle). A latch that came
between the session's preflight and that point (a pen that rebooted as the session opened,
review 20) is in it, not in `/state`; live, the session then sends nothing. A replay brings
its fresh controller to the same state before its session opens (`reach_start`), so the two
decide from the same state. A recording without `start` (made before) replays as before.

`/meta` also keeps `since_opening` (session 21b): the interruptions and stops the controller
counted from the moment the session's opening was decided up to that point (E-stops pressed
while it was opened, each cleared, say). Live, the session's first play() ends on them; the
replay made them again from the preamble, before its session, so that session is told the
same (`opened_on`). A recording without it replays as before.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from smpdevice.errors import SmpError
from smpdevice.records.frames import RecordingError
from smpdevice.replay.difference import Difference

if TYPE_CHECKING:
    from smpdevice.control import PenController
    from smpdevice.replay.pen import ReplayPen

LATCHED = frozenset({"fault", "estop", "disconnected"})  # states that carry a reason


def controller_start(pen: PenController) -> dict[str, Any]:
    """The controller's state now and, latched, why (`/meta` `start`)."""
    state = pen.state.value
    why = pen.last_fault if state in LATCHED else None
    return {"state": state, "reason": str(why) if why is not None else None}


def recorded_start(meta: dict[str, Any]) -> tuple[str, str | None] | None:
    """(state, reason) the recording started in; None for a recording made before it was kept.
    RecordingError for one that is not a state of this controller."""
    from smpdevice.control import State

    start = meta.get("start")
    if start is None:
        return None
    state = start.get("state") if isinstance(start, dict) else None
    if state not in {s.value for s in State}:
        raise RecordingError(f"its metadata's start state {state!r} is no controller state")
    reason = start.get("reason")
    return str(state), (str(reason) if reason is not None else None)


def reach_start(pen: PenController, pen_side: ReplayPen, start: tuple[str, str | None],
                wait_s: float) -> Difference | None:
    """Wait (virtual time, at most `wait_s`) until the replayed controller is in the state its
    recording started in, from what the recorded pen said before that point (its preamble,
    the report the live controller last had). A link recorded as down then fails here as a
    pulled cable does. Not reached: the difference (the controller did not latch on the same
    reports)."""
    from smpdevice.control import State

    want = State(start[0])
    if want is State.DISCONNECTED and pen.state is not want:
        pen_side.unplug()
    with contextlib.suppress(SmpError):
        pen.wait_for_state(want, timeout_s=wait_s)
    if pen.state is want:
        return None
    reason = f" ({start[1]})" if start[1] else ""
    return Difference("start", 0, 0.0, f"the controller {want.value}{reason} as the session "
                      "began", f"{pen.state.value} ({pen.last_fault})" if pen.state.value in
                      LATCHED else pen.state.value)


def since_opening(pen: PenController, opened_on: tuple[int, int]) -> dict[str, int]:
    """The interruptions and stops `pen` counted since its counts were `opened_on`."""
    return {"interruptions": max(int(pen.interruptions) - int(opened_on[0]), 0),
            "stops_asked": max(int(pen.stops_asked) - int(opened_on[1]), 0)}


def opened_on(pen: PenController, meta: dict[str, Any]) -> tuple[int, int] | None:
    """The counts the replayed session's opening is kept on (`keep_opening_counts`): the
    replayed controller's now, less what the recording's `since_opening` says came since the
    live opening (made again from its preamble); None without it. RecordingError for one
    that is no pair of counts."""
    since = meta.get("since_opening")
    if since is None:
        return None
    try:
        got = int(since["interruptions"]), int(since["stops_asked"])
    except (KeyError, TypeError, ValueError):
        raise RecordingError(f"its metadata's since_opening {since!r} is no pair of "
                             "counts") from None
    if min(got) < 0 or max(got) > 1_000_000:
        raise RecordingError(f"its metadata's since_opening {since!r} is out of range")
    return (max(int(pen.interruptions) - got[0], 0), max(int(pen.stops_asked) - got[1], 0))
