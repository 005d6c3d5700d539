"""SIGTERM (a service manager's stop) and SIGHUP (the terminal closed) during `smp run`'s
session are taken as Ctrl-C (review 12): the needle stops, the pass and the session are
recorded, one honest line, exit 130. Before, the process died at once (-15, -1): the pen
stopped only by its lease and the pass was left open, to be recovered as crashed. A real
`smp run` process on a simulated pen."""

from __future__ import annotations

import signal

import pytest

from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 (data_dir: a fixture)
    SmpRun,
    assert_honest,
    calibrate_default_pen,
    data_dir,
    short_profile,
)


@pytest.mark.realtime  # `smp run` in a child process, its pen on the wall clock, signalled mid-pass
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_pass_stops_the_needle_and_records_it(data_dir, tmp_path,  # noqa: F811
                                                                signum):
    calibrate_default_pen(data_dir)
    run = SmpRun(data_dir, short_profile(tmp_path, seconds="30"))
    run.wait_for(lambda e: e.get("event") == "checkpoint" and e.get("strokes", 0) > 0)
    run.child.send_signal(signum)
    code = run.child.wait(timeout=120)
    for reader in run._readers:
        reader.join(timeout=60)
    line = assert_honest(code, "".join(run.stderr), data_dir / "passlog.sqlite")
    assert "the needle is stopped" in line and "pass 1 as stopped" in line
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (recorded,) = log.passes()
        assert recorded.outcome == "stopped" and recorded.strokes > 0
        assert log.sessions()[0].summary["outcome"] == "interrupted"
