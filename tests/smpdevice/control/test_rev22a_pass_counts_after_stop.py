"""Session 22 (review A): a pass counts its impressions from a report made after the last stop.

A session's pass took the pen's last report as the base its counters are counted from
(`PassCounter.begin`), and as the begin record's pen counters, whatever its age. Passes in the
same zone follow each other with no re-arm: after a pass stopped between two reports (a
timed pass, slow telemetry) the last report was from BEFORE that stop, the needle running, so
the impressions the pen made between it and the stop were counted again in the next pass (and
in its begin record, a crash resume's base). The pass log is the treatment record: every
pass's count must be its own. Virtual time, the real simulator, whose firmware notes its
impression count as each NEEDLE_START and NEEDLE_STOP arrives.
"""

from __future__ import annotations

import pytest

from firmware_protocol.messages import MsgType
from simulators.firmware import PenFirmware
from smpdevice.control import PenController
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.sessions.profiles import PlannedPass
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile

pytestmark = pytest.mark.virtual_time


def test_each_pass_counts_only_its_own_impressions(sim, monkeypatch, tmp_path):
    counts: list[tuple[str, int]] = []
    for mtype in (MsgType.NEEDLE_START, MsgType.NEEDLE_STOP):
        original = PenFirmware._HANDLERS[mtype]

        def noting(fw: PenFirmware, msg, original=original, name=mtype.name) -> object:
            if name == "NEEDLE_START" or fw.state.name == "RUNNING":
                counts.append((name, fw.impressions))
            return original(fw, msg)

        monkeypatch.setitem(PenFirmware._HANDLERS, mtype, noting)
    # reports 500 ms apart: a 1.2 s pass stops 200 ms after its last report, two
    # impressions (one per 120 ms) that report never showed
    with (PenController.connect(sim.url, calibration=true_calibration(sim), telemetry_hz=2,
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        profile = short_profile(1.0, passes=1)
        zone = profile.plan[0].zone
        plan = [PlannedPass(zone=zone, duration_s=1.2), PlannedPass(zone=zone, duration_s=1.2)]
        session = TreatmentSession.open(pen, log, profile.model_copy(update={"plan": plan}),
                                        technician="ana", screening=parse_screening(CLEAR))
        results = session.play()
        recorded = log.passes(session.session_id)
        session.close()
    assert [r.outcome for r in results] == [PassOutcome.completed] * 2
    assert [name for name, _ in counts] == ["NEEDLE_START", "NEEDLE_STOP"] * 2, counts
    made = [counts[1][1] - counts[0][1], counts[3][1] - counts[2][1]]
    assert made[0] >= 9 and made[1] >= 9  # one per 120 ms for 1.2 s
    assert [p.impressions for p in recorded] == made, (counts, recorded)
