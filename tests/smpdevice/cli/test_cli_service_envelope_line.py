"""`smp run` through `smp serve` says first which envelope holds the run: the service's
(review 8b, R05; README "checked against ..."). A real `smp serve` on the simulator."""

from __future__ import annotations

from tests.smpdevice.cli.test_cli_service import Proc, env, served, smp  # noqa: F401


def test_a_run_through_the_service_says_which_envelope_first(served, env):  # noqa: F811
    cal = smp("calibrate", "--service", served, "--auto", "-t", "ana", env=env)
    assert cal.returncode == 0, cal.stderr
    run = Proc("run", "examples/session1_base_density.yaml", "-t", "ana", "--screening",
               "examples/screening_clear.yaml", env={**env, "SMP_SERVICE": served})
    try:
        run.wait_for("pass 1/4")
    finally:
        smp("estop", "--service", served, env=env)
        _rc, out, _err = run.finish()
    first = out.splitlines()[0] if out else ""
    assert first.startswith(f"checked against the envelope of the service at {served}"), \
        out[:400]
    assert "smp serve --envelope" in first
