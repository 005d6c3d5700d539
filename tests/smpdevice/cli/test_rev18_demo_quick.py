"""`smp demo --quick` shortens a pass planned longer than its quick time and never lengthens
one (the service's quick_pass_s rule, smpdevice.service.quick_pass.shortened): it set every
pass to the quick time, so a pass planned shorter ran longer than planned. The quick time is
set here above some planned passes to show it; on virtual time the pen's clock times them."""

from __future__ import annotations

from click.testing import CliRunner

from smpdevice.cli import demo, main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_sim_clock import _seconds


def assert_ran_for(p, planned_s: float) -> None:
    # The pen's clock: the pass's time plus the start's settling and the last report, never less.
    assert planned_s <= _seconds(p) <= planned_s + 0.25, (p.zone, planned_s, _seconds(p))

# The bundled profile: top 3 s, crown 3 s, hairline 2 s, top 25 impressions of 120 ms (3 s).


def _demo(tmp_path, monkeypatch, quick_s: float) -> list:
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    monkeypatch.setattr(demo, "QUICK_PASS_S", quick_s)
    result = CliRunner().invoke(main, ["demo", "--quick"])
    assert result.exit_code == 0, result.output
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        assert log.verify() is None
        return log.passes()


def test_quick_shortens_only_the_passes_planned_longer(tmp_path, monkeypatch):
    passes = _demo(tmp_path, monkeypatch, 2.5)
    assert [p.outcome for p in passes] == ["completed"] * 4
    for i in (0, 1, 3):  # 3 s and 25 impressions (3 s): timed to 2.5 s
        assert_ran_for(passes[i], 2.5)
    assert_ran_for(passes[2], 2.0)  # planned 2 s: kept, not made 2.5 s


def test_quick_longer_than_every_pass_changes_none(tmp_path, monkeypatch):
    quick_s = 3.5
    passes = _demo(tmp_path, monkeypatch, quick_s)
    assert [p.outcome for p in passes] == ["completed"] * 4
    for i, planned_s in ((0, 3.0), (1, 3.0), (2, 2.0)):
        assert_ran_for(passes[i], planned_s)
    assert passes[3].impressions == 25 and _seconds(passes[3]) < quick_s, passes[3]
