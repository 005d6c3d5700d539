"""Review 15 A3: a screening changed with `model_copy(update=...)` (which skips pydantic's
checks) so that a question is unanswered (None), malformed or unknown opened a session,
recorded with that answer as null: `require_clear()` read None as "no".

Promised: docs/safety.md "Every screening question must be answered; any yes refuses the
session"; docs/integration.md: `TreatmentSession.open` refuses an incomplete screening.
"""

from __future__ import annotations

import pytest

from smpdevice.errors import SmpError
from smpdevice.sessions.screening import QUESTIONS, ScreeningIncomplete, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.sessions.test_session import short_profile

pytestmark = pytest.mark.virtual_time

CLEAR = parse_screening({question: False for question in QUESTIONS})


@pytest.mark.parametrize("update", [{"eczema": None}, {"eczema": "no"}, {"eczema": 0},
                                    {"keloid_tendency": None}, {"tattoo_allergy": False}])
def test_a_copied_screening_not_answered_in_full_opens_no_session(sim, pen, passlog, update):
    copied = CLEAR.model_copy(update=update)
    with pytest.raises(SmpError, match=next(iter(update))):
        TreatmentSession.open(pen, passlog, short_profile(0.2, passes=1), technician="ana",
                              screening=copied)
    assert passlog.sessions() == [], "a session was recorded with an unanswered question"


def test_require_clear_and_the_record_refuse_an_unanswered_copy():
    copied = CLEAR.model_copy(update={"sunburn": None})
    with pytest.raises(ScreeningIncomplete, match="sunburn"):
        copied.require_clear()  # what resume_session and the service call too
    with pytest.raises(ScreeningIncomplete, match="sunburn"):
        copied.as_record()  # never recorded as null
    CLEAR.require_clear()  # a real screening still passes
    assert CLEAR.as_record() == dict.fromkeys(QUESTIONS, False)
