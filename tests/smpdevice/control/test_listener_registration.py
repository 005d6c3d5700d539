"""A listener that can never be called is refused when it is added (review 5): before,
`pen.add_telemetry_listener(5)` was taken and every telemetry frame then logged a traceback."""

from __future__ import annotations

import functools

import pytest
import structlog.testing

from smpdevice.checks import InvalidArgument
from smpdevice.errors import SmpError
from smpdevice.link.notifier import Notifier, QueuedNotifier
from tests.smpdevice.virtual_time import wait_until

pytestmark = pytest.mark.virtual_time


async def _async_listener(*_args: object) -> None:  # its coroutine would never be awaited
    return None


BAD = [(5, "it is not callable"), (None, "it is not callable"), ("print", "it is not callable"),
       (_async_listener, "it is an async function")]


@pytest.mark.parametrize(("listener", "why"), BAD)
@pytest.mark.parametrize("method", ["add_telemetry_listener", "add_state_listener",
                                    "add_event_listener"])
def test_the_controller_refuses_what_cannot_listen(pen, method, listener, why):
    before = (len(pen.telemetry_listeners), len(pen.state_listeners), len(pen.event_listeners))
    with pytest.raises(InvalidArgument) as exc:
        getattr(pen, method)(listener)
    message = str(exc.value)
    assert isinstance(exc.value, SmpError)
    assert message.startswith(f"listener={listener!r} is refused: {why}"), message
    assert "Pass the function itself" in message, message
    assert (len(pen.telemetry_listeners), len(pen.state_listeners),
            len(pen.event_listeners)) == before


@pytest.mark.parametrize(("method", "listener", "why"), [
    ("add_state_listener", lambda new: None, "cannot be called with 3 argument(s) "
                                             "(old_state, new_state, reason)"),
    ("add_state_listener", lambda old, new, reason, extra: None, "cannot be called with 3"),
    ("add_telemetry_listener", lambda: None, "cannot be called with 1 argument(s) (telemetry)"),
    ("add_event_listener", lambda a, b: None, "cannot be called with 1 argument(s) (event)"),
    ("add_event_listener", lambda e, *, key: None, "cannot be called with 1"),
])
def test_a_listener_taking_other_arguments_is_refused_at_add(pen, method, listener, why):
    with pytest.raises(InvalidArgument, match=r"^listener=.* is refused: ") as exc:
        getattr(pen, method)(listener)
    assert why in str(exc.value), str(exc.value)


def test_listeners_of_every_usual_shape_are_taken(pen):
    class Display:
        def __call__(self, *values: object) -> None: ...

        def state(self, old: object, new: object, reason: str = "") -> None: ...

    display = Display()
    pen.add_state_listener(display.state)
    pen.add_state_listener(display)
    pen.add_state_listener(lambda *args: None)
    pen.add_telemetry_listener(print)  # a builtin without a signature is not second-guessed
    pen.add_event_listener(lambda event, extra=None: None)
    assert len(pen.state_listeners) >= 3


def test_a_refused_listener_leaves_the_good_ones_working_without_tracebacks(pen, sim):
    seen = []
    with pytest.raises(InvalidArgument):
        pen.add_telemetry_listener(5)
    with structlog.testing.capture_logs() as logs:
        pen.add_telemetry_listener(seen.append)
        wait_until(sim, lambda: len(seen) >= 3, timeout_s=5.0)
    assert not [e for e in logs if "listener failed" in e.get("event", "")], logs


@pytest.mark.parametrize("cls", [Notifier, QueuedNotifier])
def test_every_notifier_refuses_at_add(cls):
    notifier = cls("telemetry")
    with pytest.raises(InvalidArgument, match=r"^frame_listener=42 is refused: it is not call"):
        notifier.add(42, name="frame_listener")
    notifier.add(print)  # a builtin, a bound method or an object with __call__ is fine
    notifier.add(type("Callable", (), {"__call__": lambda self, *a: None})())
    assert len(notifier) == 2


class _AsyncDisplay:
    async def __call__(self, *_values: object) -> None:  # its coroutine would never run
        return None

    async def show(self, *_values: object) -> None:
        return None


class _AsyncStream:
    async def __call__(self, *_values: object):  # an async generator: never iterated
        yield None


ASYNC_SHAPES = [_AsyncDisplay(), _AsyncDisplay().show, functools.partial(_async_listener),
                functools.partial(functools.partial(_async_listener, 1)),
                functools.partial(_AsyncDisplay()), _AsyncStream()]


@pytest.mark.parametrize("listener", ASYNC_SHAPES, ids=lambda x: type(x).__name__)
@pytest.mark.parametrize("method", ["add_telemetry_listener", "add_state_listener",
                                    "add_event_listener"])
def test_an_async_callable_of_any_shape_is_refused(pen, method, listener):
    """Not only `async def` functions: an object whose __call__ is `async def`, a partial of
    one (review6 R02); Python 3.11's inspect.iscoroutinefunction sees none of these."""
    before = len(getattr(pen, method.replace("add_", "") + "s"))
    with pytest.raises(InvalidArgument, match=r"^listener=.* is refused: it is an async func"):
        getattr(pen, method)(listener)
    assert len(getattr(pen, method.replace("add_", "") + "s")) == before


def test_sync_partials_and_callables_are_still_taken():
    notifier: Notifier = Notifier("event")
    seen: list[object] = []
    notifier.add(functools.partial(lambda tag, event: seen.append((tag, event)), "a"))
    notifier.add(type("Sync", (), {"__call__": lambda self, event: seen.append(event)})())
    notifier.add(type("Made", (), {"__init__": lambda self, event: None}))  # a class: builds one
    notifier.notify("e1")
    assert seen == [("a", "e1"), "e1"]
