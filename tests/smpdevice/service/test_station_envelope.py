"""The service checks every client's session against the station's envelope, as `smp run` and
`smp profile check` do (review 4): never the looser built-in zones when the station sets its own."""

from __future__ import annotations

import pytest

from smpdevice.envelope import DEFAULT_ZONES
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS


def _service(sim, data_dir, **options) -> ServiceHandle:
    return ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                        lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                                        **options))


@pytest.fixture
def narrow_top(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text("top:\n  dermal_ceiling_mm: 0.30\n")
    return path


def test_the_service_uses_the_station_envelope_from_the_environment(sim, data_dir, narrow_top,
                                                                     monkeypatch):
    monkeypatch.setenv("SMP_ENVELOPE", str(narrow_top))
    assert DEFAULT_ZONES["top"].dermal_ceiling_mm > 0.30  # else this test proves nothing
    with _service(sim, data_dir) as handle:
        assert handle.server.service.pen.zones["top"].dermal_ceiling_mm == 0.30


def test_the_envelope_option_wins_and_the_default_is_the_built_in_one(sim, data_dir, narrow_top,
                                                                      tmp_path, monkeypatch):
    monkeypatch.delenv("SMP_ENVELOPE", raising=False)
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))  # no station config
    with _service(sim, data_dir) as handle:
        top = handle.server.service.pen.zones["top"]
        assert top.dermal_ceiling_mm == DEFAULT_ZONES["top"].dermal_ceiling_mm
    monkeypatch.setenv("SMP_ENVELOPE", str(tmp_path / "missing.yaml"))
    with _service(sim, data_dir, envelope=str(narrow_top)) as handle:
        assert handle.server.service.pen.zones["top"].dermal_ceiling_mm == 0.30
