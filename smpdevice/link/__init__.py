"""The link layer: the wire (framing, sequence numbers, replies, telemetry fan-out), the one
request engine (queue, retransmission, lease, silence) and the host's clock.

    wire.py      Link: frames over a pyserial port, sequence numbers, RTO estimation
    reading.py   who reads the port: the reader thread, a caller awaiting its reply, the pump
    engine.py    RequestEngine: the controller's only way to talk to the pen
    operations.py  its operation queue, replies, lease renewal, ESTOP re-send
    clock.py     Clock protocol (the simulator's shape, defined host-side) and MonotonicClock
    notifier.py  Notifier: the one fan-out type for every listener list
"""

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
