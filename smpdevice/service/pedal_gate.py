"""The service's footswitch check: `smp serve` with the station's `footswitch = "required"` on
a pen without a footswitch.

At the pen's port, `smp run` and `smp calibrate` refuse such a pen when they connect, while
`smp info`, `smp clear` and `smp estop` still connect to it (they never run the needle). The
service holds the one connection every client works through, so it connects too, and refuses
only what would run the needle: arming (pen.arm, each pass of a session), a calibration
(begin, spin) and the start of a session (session.run, session.resume), each with the line
`smp run` gives (FootswitchError). Reading the pen, clearing its faults and the E-stop work.
"""

from __future__ import annotations

from typing import Any

import structlog

from smpdevice.control.controller import PenController
from smpdevice.control.footswitch import FootswitchError

log = structlog.get_logger("smpdevice.service")


class FootswitchGatedPen(PenController):
    """A PenController that connects to a pen the station's footswitch mode cannot run, and
    refuses every start of motion on it with the controller's own reason."""

    footswitch_refused: str | None = None  # why this pen may not run (None: it may)

    def _check_footswitch(self) -> None:
        """At each handshake (a reconnect may find another pen): remembered, not raised."""
        try:
            super()._check_footswitch()
        except FootswitchError as exc:
            if self.footswitch_refused is None:
                log.warning("the pen will not be run: reading, clearing and E-stop only",
                            reason=str(exc))
            self.footswitch_refused = str(exc)
        else:
            self.footswitch_refused = None

    def require_footswitch(self) -> None:
        """FootswitchError when the station's mode cannot be honoured by this pen."""
        if self.footswitch_refused is not None:
            raise FootswitchError(self.footswitch_refused)

    def arm(self) -> None:
        self.require_footswitch()
        super().arm()

    def start_needle(self, **kwargs: Any) -> None:
        self.require_footswitch()
        super().start_needle(**kwargs)

    def begin_calibration(self) -> None:
        self.require_footswitch()
        super().begin_calibration()

    def calibration_spin(self, *args: Any, **kwargs: Any) -> float:
        self.require_footswitch()
        return super().calibration_spin(*args, **kwargs)
