"""`smp run` through `smp serve` says first which envelope holds the run: the service's
(review 8b, R05; README "checked against ..."). A real `smp serve` on the simulator, whose pen
finds its calibration saved when it starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smpdevice.cli.test_cli_service import (  # noqa: F401
    WAIT_S,
    Proc,
    env,
    save_calibration,
    smp_here,
)


@pytest.fixture
def calibrated_served_virtual(env: dict[str, str]) -> Iterator[str]:  # noqa: F811
    """`calibrated_served` with its pen on the clock the service drives: this test reads the
    run's first line only, so no wall-clock deadline of two processes is met or missed."""
    save_calibration(env)
    serve = Proc("serve", "--port", "pensim://?clock=virtual", "--listen", "127.0.0.1:0",
                 "--no-socket", env=env)
    try:
        line = serve.wait_for("JSON-RPC:")
        assert "not calibrated" not in "".join(serve.seen), serve.seen
        yield line.split()[-1]
    finally:
        serve.popen.terminate()
        serve.popen.wait(WAIT_S)


def test_a_run_through_the_service_says_which_envelope_first(calibrated_served_virtual,
                                                             env):  # noqa: F811
    served = calibrated_served_virtual
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
