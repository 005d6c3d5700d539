"""Contraindication screening: every question answered, any yes refuses the session."""

from __future__ import annotations

import pytest

from smpdevice.errors import SmpError
from smpdevice.sessions.screening import QUESTIONS, Screening, ScreeningRefused, parse_screening

ALL_NO = dict.fromkeys(QUESTIONS, False)


def test_all_no_is_clear():
    screening = parse_screening(ALL_NO)
    assert screening.refusal_reasons() == []
    screening.require_clear()
    assert screening.as_record() == ALL_NO


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_any_yes_refuses_with_its_reason(question):
    screening = parse_screening({**ALL_NO, question: True})
    with pytest.raises(ScreeningRefused) as info:
        screening.require_clear()
    assert info.value.reasons == [QUESTIONS[question][1]]
    assert QUESTIONS[question][1] in str(info.value)
    assert isinstance(info.value, SmpError)


def test_several_reasons_are_all_given():
    screening = parse_screening({**ALL_NO, "sunburn": True, "keloid_tendency": True})
    assert len(screening.refusal_reasons()) == 2


def test_an_unanswered_question_is_not_a_no():
    answers = dict(ALL_NO)
    del answers["eczema"], answers["sunburn"]
    with pytest.raises(SmpError, match=r"unanswered: eczema, sunburn \(an unanswered question "
                                       r"is not a no"):
        parse_screening(answers)
    with pytest.raises(Exception):  # noqa: B017 - no defaults on the model either
        Screening()  # type: ignore[call-arg]


@pytest.mark.parametrize("answer", ["no", 0, None, "false"])
def test_answers_must_be_booleans(answer):
    with pytest.raises(SmpError, match="not true/false: infection"):
        parse_screening({**ALL_NO, "infection": answer})


def test_unknown_question_is_refused():
    with pytest.raises(SmpError, match="unknown questions: tattoo_allergy"):
        parse_screening({**ALL_NO, "tattoo_allergy": False})
