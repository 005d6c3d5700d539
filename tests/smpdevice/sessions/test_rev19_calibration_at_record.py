"""Review 19 (gaps): a calibration installed between a session's checks and its first record
(the `before_record` hook, or another thread of the program, calls `set_calibration`).

docs/integration.md: the header (and each `session_resume` record) names the calibration the
checks passed on, made again after `before_record`; a pass that ran on another one
(installed after the record) is listed in the summary's `pass_calibrations`. It used to take
the session's own calibration from the pen *after* the record: a swap in between made every
pass run on a calibration the log never named. Virtual time, real simulator, real SQLite."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.screening import parse_screening
from smpdevice.sessions.profiles import ProfileError
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import CLEAR, open_session, short_profile

pytestmark = pytest.mark.virtual_time


def _other(sim, **fit) -> Calibration:
    return Calibration.linear(pen_serial=sim.serial, technician="bo",
                              **{"offset_mm": -sim.model.offset_mm + 0.2,
                                 "gain": sim.model.gain, **fit})


class SwapAtTheRecord(PassLog):
    """A real pass log whose next opening or resumption record is followed at once by
    `set_calibration(swap)`: as another thread would install one while the record is written
    (after every check, before the session object exists)."""

    pen = swap = None

    def _swap(self) -> None:
        if self.swap is not None:
            self.pen.set_calibration(self.swap)
            self.swap = None

    def open_session(self, **kwargs):
        session_id = super().open_session(**kwargs)
        self._swap()
        return session_id

    def resume_session(self, *args, **kwargs):
        result = super().resume_session(*args, **kwargs)
        self._swap()
        return result


def _open(pen, passlog, profile, **kwargs):
    return TreatmentSession.open(pen, passlog, profile, technician="ana",
                                 screening=parse_screening(CLEAR), **kwargs)


def test_a_swap_before_the_opening_record_is_the_one_the_header_names(sim, pen, passlog):
    other = _other(sim)
    checked = pen.calibration.calibration_id
    session = _open(pen, passlog, short_profile(0.2, passes=1),
                    before_record=lambda: pen.set_calibration(other))
    session.play()
    summary, _sheet = session.close()
    assert checked != other.calibration_id
    assert passlog.session(session.session_id).calibration_id == other.calibration_id
    assert "pass_calibrations" not in summary  # every pass ran on the header's


def test_a_swap_before_the_resumption_record_is_the_one_it_names(sim, pen, passlog):
    first = open_session(pen, passlog, short_profile(0.2, passes=2))
    first.play(should_stop=lambda: len(first.results) >= 1)
    first.suspend()
    other = _other(sim)
    resumed = resume_session(pen, passlog, first.session_id, technician="ana",
                             before_record=lambda: pen.set_calibration(other))
    resumed.play()
    summary, _sheet = resumed.close()
    assert passlog.resumptions(first.session_id)[-1]["calibration_id"] == other.calibration_id
    assert "pass_calibrations" not in summary


def test_a_swap_the_checks_made_again_refuse_records_nothing(sim, pen, passlog):
    shallow = _other(sim, offset_mm=-3.0, gain=0.5)  # the pen no longer reaches the profile
    with pytest.raises(ProfileError, match="depth"):
        _open(pen, passlog, short_profile(0.2, passes=1),
              before_record=lambda: pen.set_calibration(shallow))
    assert passlog.sessions() == []  # nothing recorded
    pen.set_calibration(_other(sim))  # nothing held either: an opening goes on as usual
    session = _open(pen, passlog, short_profile(0.2, passes=1))
    assert [s.session_id for s in passlog.sessions()] == [session.session_id]
    session.close()


def test_a_swap_right_after_the_opening_record_is_listed(sim, pen, tmp_path):
    with SwapAtTheRecord.open(tmp_path / "passlog.sqlite") as log:
        checked = pen.calibration.calibration_id
        log.pen, log.swap = pen, _other(sim)
        session = _open(pen, log, short_profile(0.2, passes=2))
        session.play()
        summary, _sheet = session.close()
        assert log.session(session.session_id).calibration_id == checked
        listed = summary.get("pass_calibrations", [])
        assert [c["calibration_id"] for c in listed] == [pen.calibration.calibration_id] * 2
        assert [c["index"] for c in listed] == [0, 1]


def test_a_swap_right_after_the_resumption_record_is_listed(sim, pen, tmp_path):
    with SwapAtTheRecord.open(tmp_path / "passlog.sqlite") as log:
        first = open_session(pen, log, short_profile(0.2, passes=2))
        first.play(should_stop=lambda: len(first.results) >= 1)
        first.suspend()
        checked = pen.calibration.calibration_id
        log.pen, log.swap = pen, _other(sim)
        resumed = resume_session(pen, log, first.session_id, technician="ana")
        resumed.play()
        summary, _sheet = resumed.close()
        assert log.resumptions(first.session_id)[-1]["calibration_id"] == checked
        listed = summary.get("pass_calibrations", [])
        assert [(c["index"], c["calibration_id"]) for c in listed] == [
            (1, pen.calibration.calibration_id)]
