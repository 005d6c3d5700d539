"""Review 11, F2: docs/integration.md "`Monitor(pen=pen)` or `Monitor(port)`; anything else,
e.g. neither, is `InvalidArgument` naming the argument". Both at once would show a port the pen
is not on (and `r`, reconnect, would go there)."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.monitor import Monitor

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("port", ["socket://10.0.0.9:7000", "pensim://other"])
def test_a_port_and_a_pen_together_are_refused_naming_both(pen, port):
    with pytest.raises(InvalidArgument) as caught:
        Monitor(port, pen=pen)
    message = str(caught.value)
    assert message.startswith("port=") and "pen=" in message and "give one" in message
    assert "\n" not in message


def test_the_same_port_as_the_pen_is_refused_too(pen):
    """One way to name the pen: the port a controller is on is its own (`pen.port_url`)."""
    with pytest.raises(InvalidArgument, match="^port="):
        Monitor(pen.port_url, pen=pen)
    assert Monitor(pen=pen).snapshot().port == pen.port_url
