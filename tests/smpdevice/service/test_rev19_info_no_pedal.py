"""Rev 19: a pen the station's `footswitch = "required"` cannot run (no pedal) is served for
reading, clearing and the E-stop only (test_rev18_serve_no_pedal.py), but `pen.identity` and
`smp info --service` never said so: only a refused arm did. Now `pen.identity` carries
`footswitch_refused` (the controller's own line; null when the pen may run) and `smp info
--service` prints it, in `--json` too. A real service on a simulated pen."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.cli import main
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration


def _info(url: str, data_dir: Path, monkeypatch, *extra: str) -> str:
    monkeypatch.setenv("SMP_DATA_DIR", str(data_dir))  # the viewer token's directory
    result = CliRunner().invoke(main, ["info", "--service", url, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _served(tmp_path: Path, monkeypatch, fitted: bool) -> tuple[str, dict]:
    data_dir = tmp_path / "data"
    with PenSimulator(model=PenModel(seed=5, footswitch_fitted=fitted)) as sim, \
            ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                         lease_ms=1000, calibration=true_calibration(sim),
                                         footswitch="required")) as handle:
        return (_info(handle.url, data_dir, monkeypatch),
                json.loads(_info(handle.url, data_dir, monkeypatch, "--json")))


def test_a_pen_the_footswitch_mode_cannot_run_is_named_by_info(tmp_path, monkeypatch):
    text, shown = _served(tmp_path, monkeypatch, fitted=False)
    line = [x for x in text.splitlines() if x.strip().startswith("not run")]
    assert line and "no footswitch" in line[0] and "E-stop only" in line[0], text
    assert "no footswitch" in (shown["footswitch_refused"] or ""), shown


def test_a_pen_with_its_pedal_is_not_named(tmp_path, monkeypatch):
    text, shown = _served(tmp_path, monkeypatch, fitted=True)
    assert "not run" not in text, text
    assert shown["footswitch_refused"] is None, shown
