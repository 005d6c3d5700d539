"""One live `TreatmentSession` per session in a program: a second one of the same session (a
Resume button pressed twice, `resume_session` of a session still open here) would play the
passes left a second time (review 15: the log held passes 0, 1, 1). Held per pass log object
(one writer per log file), by weak reference: a session object dropped without being ended
holds nothing once it is gone."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from smpdevice.control.states import StateError

_lock = threading.Lock()
_held: weakref.WeakKeyDictionary[Any, dict[str, weakref.ref[Any]]] = \
    weakref.WeakKeyDictionary()


def _player(passlog: Any, session_id: str) -> Any:
    """The live, not ended session object playing `session_id` on `passlog`, or None."""
    ref = _held.get(passlog, {}).get(session_id)
    session = ref() if ref is not None else None
    return session if session is not None and session._ended is None else None


def refuse_held(passlog: Any, session_id: str) -> None:
    """StateError when a live session object of this program already plays `session_id`:
    asked before anything is recorded."""
    with _lock:
        if _player(passlog, session_id) is not None:
            raise StateError(
                f"session {session_id} is open in this program already (a session object not "
                "closed or suspended): play it through that object, or suspend or close it "
                "first. Nothing was recorded")


def hold(session: Any) -> None:
    """Register `session` as its session's one player (StateError if another holds it)."""
    with _lock:
        other = _player(session.passlog, session.session_id)
        if other is not None and other is not session:
            raise StateError(f"session {session.session_id} is open in this program already: "
                             "play it through that object. Nothing was recorded")
        _held.setdefault(session.passlog, {})[session.session_id] = weakref.ref(session)
