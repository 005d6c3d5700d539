"""Review 14: `smp replay SESSION` without --db reads past a stray or damaged pen log.

What was wrong: replay opened every `passlog*.sqlite` of the data directory as if each had
been given, so a garbage `passlog-X.sqlite` stopped `smp replay SID` (its session in the good
log), exit 2, with "error: --db .../passlog-X.sqlite is not a pass log": a --db nobody gave.
`smp replay --help`: "--db FILE  Pass-log file. Default: every log of the data directory";
README: a log of the data directory that cannot be opened "(damaged, or a stray file named
like a pen's log)" is named in one `warning:` line and left out, as `smp sessions` does.
"""

from __future__ import annotations

from pathlib import Path

from ._rev14_smp import calibrate_here, run_args, smp_here, station_env

# `smp` runs in this process (tests/smpdevice/shell.py): what is checked is replay's reading
# of the data directory, its status and its lines, not a process.


def _recorded_session(env: dict[str, str]) -> str:
    calibrate_here(env)
    run = smp_here(env, *run_args())
    assert run.returncode == 0, run.stderr
    return run.stdout.split("Session ", 1)[1].split(":", 1)[0]


def test_replay_reads_past_a_stray_pen_log(tmp_path: Path) -> None:
    env = station_env(tmp_path)
    session_id = _recorded_session(env)
    stray = Path(env["SMP_DATA_DIR"]) / "passlog-X.sqlite"
    stray.write_text("not a database\n")
    replay = smp_here(env, "replay", session_id)
    assert "--db" not in replay.stderr, replay.stderr  # none was given
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.startswith("match"), replay.stdout
    warnings = [line for line in replay.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(stray) in warnings[0], replay.stderr


def test_a_session_not_found_may_be_in_the_log_left_out(tmp_path: Path) -> None:
    env = station_env(tmp_path)
    _recorded_session(env)
    (Path(env["SMP_DATA_DIR"]) / "passlog-X.sqlite").write_text("not a database\n")
    replay = smp_here(env, "replay", "Snothere")
    assert replay.returncode == 3, replay.stderr  # the pass log cannot be (all) read
    assert "--db" not in replay.stderr, replay.stderr
    assert "could not be read" in replay.stderr.splitlines()[-1], replay.stderr
