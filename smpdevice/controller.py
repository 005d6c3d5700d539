"""Compatibility shim: the controller lives in `smpdevice.control` now.

Kept so `from smpdevice.controller import PenController, State` keeps working until every
import moves to `smpdevice.control`.
"""

from smpdevice.control import *  # noqa: F403
from smpdevice.control.options import (  # noqa: F401
    BAUD_RANGE,
    TELEMETRY_RANGE_HZ,
    TIMEOUT_RANGE_S,
)
from smpdevice.control.states import LEASED, MOTION, OFFLINE, SAFE  # noqa: F401
