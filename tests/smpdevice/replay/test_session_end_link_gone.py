"""A session whose pen link goes while it ends (session 11, a suite failure of
test_replay_service): the drop of the session's client floor reached an engine stopping at
that moment (`LinkError`, not the `StateError` of a pen already disconnected), suspend() raised
before sealing the recording, and the open recording went on taking frames after the resume
had linked its hash: "does not match the hash in the close record". The floor is now dropped
locally when the link has gone, and the recording is sealed however the ending goes."""

from __future__ import annotations

import pytest

from smpdevice.link.engine import GONE
from smpdevice.link.wire import LinkError
from smpdevice.records.frames import file_sha256
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.replay.conftest import CLEAR, short_profile

pytestmark = pytest.mark.virtual_time


def opened(pen, passlog, epidermis_mm: float | None = None) -> TreatmentSession:
    profile = short_profile(0.2, passes=2)
    if epidermis_mm is not None:
        profile = profile.model_copy(update={"skin": profile.skin.model_copy(
            update={"epidermis_mm": epidermis_mm})})
    return TreatmentSession.open(pen, passlog, profile, technician="ana",
                                 screening=parse_screening(CLEAR))


def gone(*_args, **_kwargs):
    raise LinkError(GONE)


def test_the_clients_floor_is_dropped_even_as_the_link_goes(pen, passlog, monkeypatch):
    session = opened(pen, passlog, epidermis_mm=0.25)
    assert pen.client_epidermis_mm == 0.25
    monkeypatch.setattr(pen._engine, "call", gone)  # the engine stopping as it is called
    pen._hold_client_skin(session._skin_holder, None, refuse_empty=False)  # never raises
    assert pen.client_epidermis_mm is None, "the ended session's floor was kept"
    monkeypatch.undo()
    session.close()


@pytest.mark.parametrize("end", ["suspend", "close"])
def test_a_session_ending_that_fails_still_seals_its_recording(sim, pen, passlog, monkeypatch,
                                                               end):
    session = opened(pen, passlog)
    session.play()
    monkeypatch.setattr(pen, "_hold_client_skin", gone)
    with pytest.raises(LinkError):
        getattr(session, end)()
    path = session.recording.writer.path
    sealed = file_sha256(path)
    sim.time.sleep(0.3)  # the pen's reports go on: an open recording would take them
    assert session.recording.seal()["sha256"] == sealed == file_sha256(path)
