"""Review 18e: every zone `pen.zones` hands out is a copy; changed in place
(`object.__setattr__`), it changes nothing the guard checks (docs/integration.md "Zones").
Before, `pen.zones[name]` was the guard's own object: the next `set_zone(name)` took a ceiling
of 1.0 mm and 0.95 mm was sent. Real simulator over real bytes."""

from __future__ import annotations

import pytest

from simulators import PenSimulator
from smpdevice.control import PenController
from smpdevice.envelope import EnvelopeError
from tests.smpdevice.conftest import true_calibration


def _widen(zone, ceiling_mm: float = 1.0) -> None:
    object.__setattr__(zone, "dermal_ceiling_mm", ceiling_mm)


def test_a_zone_read_from_pen_zones_and_changed_in_place_widens_nothing():
    with PenSimulator(seed=7) as sim:
        pen = PenController.connect(sim.url, calibration=true_calibration(sim))
        try:
            ceiling_mm = pen.set_zone("hairline").dermal_ceiling_mm
            assert ceiling_mm < 0.9
            own = pen.zones["hairline"].dermal_ceiling_mm
            # every way a zone reaches a caller: item, values(), items(), get()
            _widen(pen.zones["hairline"])
            for zone in pen.zones.values():
                _widen(zone)
            for _name, zone in pen.zones.items():
                _widen(zone)
            _widen(pen.zones.get("hairline"))
            _widen(pen.zone)
            object.__setattr__(pen.zones.session, "max_passes", 10**9)
            assert pen.zones["hairline"].dermal_ceiling_mm == own
            assert pen.zones["hairline"] is not pen.zones["hairline"]
            assert pen.zones.session.max_passes < 10**9
            assert pen.set_zone("hairline").dermal_ceiling_mm == ceiling_mm
            assert pen.zone.dermal_ceiling_mm == ceiling_mm
            with pytest.raises(EnvelopeError):
                pen.set_setpoints(depth_mm=0.95, speed_hz=90.0, duty_pct=40.0,
                                  period_ms=100.0)
        finally:
            pen.close()
