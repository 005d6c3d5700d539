"""What the controller's `add_*_listener` refuse beyond the Notifier's own check (link/
notifier.py): a listener that could never do its job is refused when it is added
(InvalidArgument naming `listener`), not logged as a traceback at every notification.

- A callable whose signature Python cannot read (`int`, `dict`, a C extension's object) cannot
  be checked against the arguments it will get: refused, unless it is a builtin function or
  method (`print`, `deque.append`), which are called as they are documented.
- A generator function: calling it only makes a generator that nobody runs, so its body never
  runs (as an async function's coroutine, which the Notifier refuses).
"""

from __future__ import annotations

import functools
import inspect
import types

from smpdevice.checks import InvalidArgument


def _unwrapped(listener: object) -> object:
    seen = 0
    while isinstance(listener, functools.partial) and seen < 100:  # partial of a partial...
        listener, seen = listener.func, seen + 1
    return listener


def _why_not(listener: object) -> str | None:
    if not callable(listener):
        return None  # the Notifier says so, in its own words
    inner = _unwrapped(listener)
    plain = inspect.isfunction(inner) or inspect.ismethod(inner) or inspect.isclass(inner)
    call = None if plain else inspect.getattr_static(type(inner), "__call__", None)
    if inspect.isgeneratorfunction(inner) or inspect.isgeneratorfunction(call):
        return "it is a generator function: calling it only makes a generator, its body never runs"
    if isinstance(inner, types.BuiltinFunctionType):
        return None  # print, deque.append: called as documented
    try:
        inspect.signature(listener)
    except (TypeError, ValueError):
        return ("its signature cannot be read, so it cannot be checked against the arguments "
                "it will get (a class such as int, or an object of a C extension)")
    return None


def require_listener(listener: object, *, name: str = "listener") -> None:
    """Refuse (InvalidArgument naming `name`) a listener that could never do its job."""
    why = _why_not(listener)
    if why is not None:
        shown = repr(listener)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InvalidArgument(
            f"{name}={shown} is refused: {why}; allowed: a plain function or method, called "
            "on a thread of the controller. Wrap it in a function of your own (def on_state("
            "old, new, reason): ...).")
