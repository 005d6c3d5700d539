"""A screening answers file whose key holds a lone surrogate (`{"open_sores\\ud800": false}`,
valid JSON the strict loader passes on) used to end `parse_screening` in an IndexError (a
pydantic error with an empty `loc`), and `smp run --screening FILE` in a traceback, exit 1.
Now such a key is an unknown question, named with every other unanswered one (review 17)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smpdevice.sessions.screening import QUESTIONS, ScreeningIncomplete, parse_screening
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
CLEAR = dict.fromkeys(QUESTIONS, False)


def test_parse_screening_names_a_key_with_a_lone_surrogate_and_what_is_unanswered():
    with pytest.raises(ScreeningIncomplete) as refused:
        parse_screening({"open_sores\ud800": False}, source="a.json")
    text = str(refused.value)
    assert text.startswith("a.json: screening incomplete: unanswered: open_sores, eczema")
    assert r"unknown questions: open_sores\ud800" in text


@pytest.mark.parametrize("answers", [{**CLEAR, "\udcff": True}, {**CLEAR, "eczema\ud800": 1}])
def test_an_unreadable_key_beside_every_answer_is_still_refused(answers):
    with pytest.raises(ScreeningIncomplete, match=r"unknown questions: .*\\ud"):
        parse_screening(answers)


def test_run_refuses_such_a_screening_file_in_one_line(tmp_path):
    answers = tmp_path / "answers.json"
    answers.write_text('{"open_sores\\ud800": false}', encoding="ascii")
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
           "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml")}
    run = shell.smp(("run", "examples/session1_base_density.yaml", "--port",
                     "pensim://?clock=virtual", "-t", "ana", "--screening", str(answers)),
                    env=env, cwd=ROOT)
    assert "Traceback" not in run.stderr and "IndexError" not in run.stderr, run.stderr[-400:]
    assert run.returncode == 2, run.returncode
    assert "answers.json" in run.stderr and "unknown questions" in run.stderr
