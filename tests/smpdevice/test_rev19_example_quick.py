"""The example session software's --quick shortens a pass planned longer than its quick time
and never lengthens one (the rule of `smp demo --quick` and the service's quick_pass_s,
smpdevice.service.quick_pass.shortened): it set every pass to 0.3 s, so a pass planned
shorter ran longer. The quick time is set here above some planned passes to show it; the
simulated pen runs on virtual time, so the pen's clock times the passes."""

from __future__ import annotations

import pytest

from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import ProfileError
from tests.smpdevice.cli.test_cli_sim_clock import _seconds
from tests.smpdevice.cli.test_rev18_demo_quick import assert_ran_for
from tests.smpdevice.test_examples import _load_example

# The example's profile (session 1): top 3 s, crown 3 s, hairline 2 s, top 25 x 120 ms (3 s).


def _quick(tmp_path, monkeypatch, capsys, quick_s: float) -> list:
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    example = _load_example()
    monkeypatch.setattr(example, "QUICK_PASS_S", quick_s)
    code = example.main(["--simulator", "--quick"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        assert log.verify() is None
        return log.passes()


def test_quick_shortens_only_the_passes_planned_longer(tmp_path, monkeypatch, capsys):
    passes = _quick(tmp_path, monkeypatch, capsys, 2.5)
    assert [p.outcome for p in passes] == ["completed"] * 4
    for i in (0, 1, 3):  # 3 s and 25 impressions (3 s): timed to 2.5 s
        assert_ran_for(passes[i], 2.5)
    assert_ran_for(passes[2], 2.0)  # planned 2 s: kept, never made 2.5 s


def test_quick_longer_than_every_pass_changes_none(tmp_path, monkeypatch, capsys):
    passes = _quick(tmp_path, monkeypatch, capsys, 3.5)
    for i, planned_s in ((0, 3.0), (1, 3.0), (2, 2.0)):
        assert_ran_for(passes[i], planned_s)
    assert passes[3].impressions == 25 and _seconds(passes[3]) < 3.5, passes[3]


def test_the_shortened_profile_is_checked_again_before_a_session_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    example = _load_example()
    monkeypatch.setattr(example, "QUICK_PASS_S", 0.0)  # no pass may last 0 s
    with pytest.raises(ProfileError, match=r"(?s)--quick.*duration_s = 0\.0: must be above 0 s"):
        example.main(["--simulator", "--quick"])
    assert not (tmp_path / "passlog.sqlite").exists()  # no session opened
