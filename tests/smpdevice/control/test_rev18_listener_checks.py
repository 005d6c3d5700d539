"""Review 18: a listener that could never do its job is refused when added (InvalidArgument
naming `listener`), not logged as a traceback at every notification: a class whose signature
Python cannot read (`int`, `dict`), a generator function (its body never runs). Builtin
functions and methods (`print`, `deque.append`) are still taken."""

from __future__ import annotations

import collections
import functools

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control.pen import PenTelemetry
from tests.smpdevice.virtual_time import wall_until

pytestmark = pytest.mark.virtual_time


def _generator(old, new, reason):
    yield old


class _GeneratorCall:
    def __call__(self, old, new, reason):
        yield old


class _Inherited(_GeneratorCall):
    pass


@pytest.mark.parametrize("add", ["add_state_listener", "add_telemetry_listener",
                                 "add_event_listener"])
@pytest.mark.parametrize("listener, why", [
    (int, "signature cannot be read"), (dict, "signature cannot be read"),
    (_generator, "generator function"), (functools.partial(_generator), "generator function"),
    (_GeneratorCall(), "generator function"), (_Inherited(), "generator function")],
    ids=["int", "dict", "generator", "partial", "call_generator", "inherited"])
def test_a_listener_that_could_never_work_is_refused(sim, pen, add, listener, why):
    before = (len(pen.state_listeners), len(pen.telemetry_listeners), len(pen.event_listeners))
    with pytest.raises(InvalidArgument, match=f"listener=.* is refused: .*{why}"):
        getattr(pen, add)(listener)
    assert before == (len(pen.state_listeners), len(pen.telemetry_listeners),
                      len(pen.event_listeners))


def test_builtins_called_as_documented_are_still_taken(sim, pen):
    frames: collections.deque = collections.deque(maxlen=4)
    events_before = len(pen.event_listeners)
    pen.add_telemetry_listener(frames.append)  # its signature cannot be read: a builtin
    pen.add_event_listener(print)
    pen.pause(0.3)  # on the pen's clock: reports come every 20 ms
    wall_until(lambda: len(frames) > 0, "a frame reached the deque")  # its own thread
    assert isinstance(frames[0], PenTelemetry)  # the builtin was called with each frame
    assert len(pen.event_listeners) == events_before + 1  # print taken, not refused
