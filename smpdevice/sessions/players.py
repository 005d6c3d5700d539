"""One live `TreatmentSession` per session in a program: a second one of the same session (a
Resume button pressed twice, `resume_session` of a session still open here) would play the
passes left a second time (review 15: the log held passes 0, 1, 1). Held per pass log object
(one writer per log file), by weak reference: a session object dropped without being ended
holds nothing once it is gone. A resume holds its session from its first look to its session
object (`reserved`): two resumes at once cannot both pass the look and both record a
resumption (review 19)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from smpdevice.control.states import StateError

_lock = threading.Lock()
_held: weakref.WeakKeyDictionary[Any, dict[str, weakref.ref[Any]]] = \
    weakref.WeakKeyDictionary()


class _Resuming:
    """A resume under way in thread `thread`: holds its session until its session object
    takes its place (`hold`, from that thread) or the resume ends without one."""

    _ended: str | None = None  # read as a live player's

    def __init__(self) -> None:
        self.thread = threading.get_ident()


def _player(passlog: Any, session_id: str) -> Any:
    """The live, not ended session object playing `session_id` on `passlog` (or a resume of it
    under way), or None."""
    ref = _held.get(passlog, {}).get(session_id)
    session = ref() if ref is not None else None
    return session if session is not None and session._ended is None else None


def _refuse(passlog: Any, session_id: str) -> None:
    """Under `_lock`: StateError when `session_id` is held here (played, or being resumed)."""
    other = _player(passlog, session_id)
    if isinstance(other, _Resuming):
        raise StateError(
            f"session {session_id} is being resumed in this program already (another resume "
            "of it is under way): play it through the session object that resume returns. "
            "Nothing was recorded")
    if other is not None:
        raise StateError(
            f"session {session_id} is open in this program already (a session object not "
            "closed or suspended): play it through that object, or suspend or close it "
            "first. Nothing was recorded")


def refuse_held(passlog: Any, session_id: str) -> None:
    """StateError when a live session object of this program already plays `session_id`, or
    a resume of it is under way: asked before anything is recorded."""
    with _lock:
        _refuse(passlog, session_id)


@contextmanager
def reserved(passlog: Any, session_id: str) -> Iterator[None]:
    """Refuse as `refuse_held`, else hold `session_id` for this thread's resume until the block
    ends: the look and the record cannot race another resume (each would record a resumption
    of one session). The session object made in the block (`hold`, same thread) takes its
    place; a resume that fails leaves nothing held."""
    token = _Resuming()
    with _lock:
        _refuse(passlog, session_id)
        _held.setdefault(passlog, {})[session_id] = weakref.ref(token)
    try:
        yield
    finally:
        with _lock:
            held = _held.get(passlog, {})
            ref = held.get(session_id)
            if ref is not None and ref() is token:
                del held[session_id]


def hold(session: Any) -> None:
    """Register `session` as its session's one player (StateError if another holds it, or
    another thread's resume of it is under way)."""
    with _lock:
        other = _player(session.passlog, session.session_id)
        mine = isinstance(other, _Resuming) and other.thread == threading.get_ident()
        if other is not None and other is not session and not mine:
            raise StateError(f"session {session.session_id} is open in this program already: "
                             "play it through that object. Nothing was recorded")
        _held.setdefault(session.passlog, {})[session.session_id] = weakref.ref(session)
