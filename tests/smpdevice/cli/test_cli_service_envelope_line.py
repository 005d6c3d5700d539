"""`smp run` through `smp serve` says first which envelope holds the run: the service's
(review 8b, R05; README "checked against ..."). A real `smp serve` on the simulator, whose pen
finds its calibration saved when it starts."""

from __future__ import annotations

from tests.smpdevice.cli.test_cli_service import (  # noqa: F401
    Proc,
    calibrated_served,
    env,
    smp_here,
)


def test_a_run_through_the_service_says_which_envelope_first(calibrated_served, env):  # noqa: F811
    served = calibrated_served
    run = Proc("run", "examples/session1_base_density.yaml", "-t", "ana", "--screening",
               "examples/screening_clear.yaml", env={**env, "SMP_SERVICE": served})
    try:
        run.wait_for("pass 1/4")
    finally:
        smp_here("estop", "--service", served, env=env)
        _rc, out, _err = run.finish()
    first = out.splitlines()[0] if out else ""
    assert first.startswith(f"checked against the envelope of the service at {served}"), \
        out[:400]
    assert "smp serve --envelope" in first
