"""B3 (review 11): `preflight` refuses a second `smp serve` on the same data directory before
its pen is opened, by asking the first one's Unix socket. The first service binds that socket
only in `start()`, after `build()` has opened (and handshaken) its pen: two `smp serve` started
together (a unit restarted while a manual one starts, a double click) both pass preflight and
both open the pen. Here the two steps interleave as they would: A built, B built, A started."""

from __future__ import annotations

import pytest

from smpdevice.service.runner import ServiceOptions, build
from smpdevice.service.server import ServeError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS


def test_a_second_serve_built_while_the_first_starts_refuses_before_opening_its_pen(
        sim, data_dir):
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim))
    first = build(options)  # smp serve A: preflight passed, its pen open, not listening yet
    second = None
    try:
        with pytest.raises(ServeError, match="another `smp serve`"):
            second = build(options)  # smp serve B, a moment later
    finally:
        if second is not None:
            second.service.pen.close()
        first.service.pen.close()
