"""A recorded session on the virtual-time simulator, shared by the replay tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CLEAR = {q: False for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare",
                            "infection", "sunburn", "keloid_tendency")}


def short_profile(seconds: float = 0.3, passes: int | None = 3):
    profile = load_profile(EXAMPLES / "session1_base_density.yaml")
    plan = [p.model_copy(update={"duration_s": seconds, "impressions": None})
            for p in profile.plan][:passes]
    return profile.model_copy(update={"plan": plan})


@dataclass
class Recorded:
    passlog: PassLog
    session_id: str
    summary: dict
    path: Path


def record_session(pen, passlog: PassLog, profile=None) -> Recorded:
    session = TreatmentSession.open(pen, passlog, profile or short_profile(), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    summary, _ = session.close()
    path = Path(passlog.path).parent / "recordings" / summary["recording"]["file"]
    return Recorded(passlog, session.session_id, summary, path)


@pytest.fixture
def passlog(tmp_path):
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        yield log
