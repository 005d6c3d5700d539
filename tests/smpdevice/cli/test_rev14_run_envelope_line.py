"""Review 14: `smp run` names the envelope that refused its profile.

What was wrong: a profile the station's envelope (SMP_ENVELOPE) refused got the error alone,
so the technician could not tell the station's stricter zone from the built-in one. README
("The station config"): every command that checks against the envelope says which one it used
(`checked against ...`; "`smp run` prints it as its first line"). The refusal now names it on
stderr, as `smp profile check` does (stdout stays empty on an error); a profile that passes
still gets the `checked against ...` first line on stdout.
"""

from __future__ import annotations

from pathlib import Path

from ._rev14_smp import run_args, smp, station_env


def test_a_profile_refused_by_the_station_envelope_names_that_envelope(tmp_path: Path) -> None:
    env = station_env(tmp_path)
    envelope = tmp_path / "clinic.yaml"
    envelope.write_text("hairline:\n  dermal_ceiling_mm: 0.3\n")  # the profile asks 0.32
    env["SMP_ENVELOPE"] = str(envelope)
    run = smp(env, *run_args())
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout == "", run.stdout  # an error: nothing on stdout
    head = run.stderr.splitlines()[0]
    assert f"checked against the envelope {envelope}" in head, run.stderr
    assert "SMP_ENVELOPE" in head, head
    assert "dermal ceiling 0.3" in run.stderr
