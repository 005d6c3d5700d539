"""The link layer: the wire (framing, sequence numbers, replies, telemetry fan-out), the one
request engine (queue, retransmission, lease, silence) and the host's clock.

    wire.py      Link: frames over a pyserial port, sequence numbers, RTO estimation
    reading.py   who reads the port: the reader thread, a caller awaiting its reply, the pump
    engine.py    RequestEngine: the controller's only way to talk to the pen
    operations.py  its operation queue, replies, lease renewal, ESTOP re-send
    clock.py     Clock protocol (the simulator's shape, defined host-side) and MonotonicClock
    notifier.py  Notifier: the one fan-out type for every listener list
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpdevice.lazy import lazy_exports

if TYPE_CHECKING:
    from smpdevice.link.clock import MONOTONIC, Clock, MonotonicClock
    from smpdevice.link.engine import Operation, RequestEngine
    from smpdevice.link.notifier import Notifier
    from smpdevice.link.wire import (
        HISTORY_FRAMES,
        MAX_ATTEMPTS,
        RTO_INITIAL_S,
        RTO_MAX_S,
        RTO_MIN_S,
        CommandRefused,
        Link,
        LinkError,
        LinkStats,
        LinkTimeout,
        RtoEstimator,
        SupersededByEStop,
        Tracked,
        format_frames,
        no_reply_message,
    )

# Each name is imported from its module when first used: `from smpdevice.link.clock import
# Clock` must not import the wire, the engine, structlog and rich (issue 13: start-up).
_HOME = {
    "MONOTONIC": "smpdevice.link.clock",
    "Clock": "smpdevice.link.clock",
    "MonotonicClock": "smpdevice.link.clock",
    "Operation": "smpdevice.link.engine",
    "RequestEngine": "smpdevice.link.engine",
    "Notifier": "smpdevice.link.notifier",
    "HISTORY_FRAMES": "smpdevice.link.wire",
    "MAX_ATTEMPTS": "smpdevice.link.wire",
    "RTO_INITIAL_S": "smpdevice.link.wire",
    "RTO_MAX_S": "smpdevice.link.wire",
    "RTO_MIN_S": "smpdevice.link.wire",
    "CommandRefused": "smpdevice.link.wire",
    "Link": "smpdevice.link.wire",
    "LinkError": "smpdevice.link.wire",
    "LinkStats": "smpdevice.link.wire",
    "LinkTimeout": "smpdevice.link.wire",
    "RtoEstimator": "smpdevice.link.wire",
    "SupersededByEStop": "smpdevice.link.wire",
    "Tracked": "smpdevice.link.wire",
    "format_frames": "smpdevice.link.wire",
    "no_reply_message": "smpdevice.link.wire",
}


if not TYPE_CHECKING:  # mypy reads the imports above, and still flags a name not there
    __getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())


__all__ = [
    "HISTORY_FRAMES",
    "MAX_ATTEMPTS",
    "MONOTONIC",
    "RTO_INITIAL_S",
    "RTO_MAX_S",
    "RTO_MIN_S",
    "Clock",
    "CommandRefused",
    "Link",
    "LinkError",
    "LinkStats",
    "LinkTimeout",
    "MonotonicClock",
    "Notifier",
    "Operation",
    "RequestEngine",
    "RtoEstimator",
    "SupersededByEStop",
    "Tracked",
    "format_frames",
    "no_reply_message",
]
