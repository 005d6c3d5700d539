"""Which causes of each device fault and link event are present, so overlapping fault windows
never end each other.

Every scheduled item (`jam@1-3`, `ScheduledFault`), every random occurrence (`jam~0.2`) and the
hand API (`sim.inject`, `sim.release_pedal`, `sim.disconnect`) hold a cause of their own; the
fault's cause is present while any one is held, so `jam@1-3,jam@2-2.5` keeps the jam until 3 s
and `pedal_up@1-20,pedal_up~2` keeps the pedal up from 1 to 20 s. A cause removed by hand
(`sim.clear`, `sim.press_pedal`, `sim.reconnect`, `reconnect@T`) removes every cause held at that
moment: what QA does by hand happens now; a window still open just ends without effect.
"""

from __future__ import annotations

from collections.abc import Hashable

BY_HAND = "by hand"  # the one cause the hand API holds (inject twice, clear once: gone)


class Causes:
    """Causes held, per fault (any hashable key: a DeviceFault, "disconnect")."""

    def __init__(self) -> None:
        self._held: dict[Hashable, set[Hashable]] = {}

    def hold(self, key: Hashable, cause: Hashable) -> None:
        self._held.setdefault(key, set()).add(cause)

    def release(self, key: Hashable, cause: Hashable) -> bool:
        """Let `cause` go (`BY_HAND`: every cause of `key`); True when none is held any more and
        one was: the fault's cause goes away now. A cause already let go changes nothing."""
        held = self._held.get(key)
        if cause == BY_HAND:
            self._held.pop(key, None)
            return True  # by hand: the cause goes, whatever held it (or nothing did)
        if not held or cause not in held:
            return False
        held.discard(cause)
        return not held

    def held(self, key: Hashable) -> bool:
        return bool(self._held.get(key))
