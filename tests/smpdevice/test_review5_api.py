"""REVIEW5 3 and 6: Python API and gauge-URL arguments give typed errors naming the value.

Before: PassLog.session(None) -> TypeError, audit(trusted="zz") -> ValueError, PassLog(123) ->
TypeError, set_zone("CROWN") named "zone=0", and a gauge URL with a bad port (tcp://h:99999,
tcp://h:abc, tcp://[::1) escaped as urllib's ValueError (a traceback from `smp calibrate`).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators import PenSimulator
from smpdevice.calibration.gauges import GaugeError, TcpGauge
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.envelope import EnvelopeError
from smpdevice.passlog import PassLog


@pytest.fixture
def log(tmp_path):
    with PassLog(tmp_path / "passlog.sqlite") as passlog:
        yield passlog


@pytest.mark.parametrize("bad", [None, 5, b"S1", "", "   ", "S\n1", "S" * 65])
def test_session_id_must_be_a_text(log, bad):
    for call in (log.session, log.resumptions):
        with pytest.raises(InvalidArgument, match="session_id="):
            call(bad)
    if bad is not None:
        with pytest.raises(InvalidArgument, match="session_id="):
            log.passes(bad)


def test_passes_of_all_sessions_still_takes_none(log):
    assert log.passes() == [] and log.passes(None) == []


@pytest.mark.parametrize("bad", ["zz", 5, ["fp"]])
def test_audit_trusted_must_be_a_mapping(log, bad):
    with pytest.raises(InvalidArgument, match="trusted="):
        log.audit(trusted=bad)


@pytest.mark.parametrize("bad", [123, None, 1.5])
def test_passlog_path_must_be_a_path(bad):
    with pytest.raises(InvalidArgument, match="path="):
        PassLog(bad, readonly=True)


def test_unknown_zone_error_names_the_value_given(tmp_path):
    with (PenSimulator(seed=2) as sim, PenController.connect(sim.url) as pen,
          pytest.raises(EnvelopeError) as info):
        pen.set_zone("CROWN")
    message = str(info.value)
    assert "zone='CROWN' is unknown" in message and "crown" in message, message
    assert "zone=0" not in message


@pytest.mark.parametrize("url", [
    "tcp://127.0.0.1:99999", "tcp://127.0.0.1:abc", "tcp://[::1", "tcp://127.0.0.1:0",
    "tcp://127.0.0.1:-1", "tcp://127.0.0.1",
])
def test_bad_gauge_url_is_one_gauge_error(url):
    with pytest.raises(GaugeError, match="bad gauge URL"):
        TcpGauge(url)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=16).filter(lambda t: "@" not in t))  # no user@host: no DNS look-up
def test_any_gauge_port_text_gives_a_gauge_error_or_a_gauge(port):
    # a bad URL, or nothing listens there: both typed, never urllib's ValueError
    try:
        TcpGauge(f"tcp://127.0.0.1:{port}", timeout_s=0.2).close()
    except GaugeError as exc:
        assert str(exc).strip(), "a gauge error says what is wrong"
