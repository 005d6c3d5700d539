"""Review 14: a key file that is a FIFO is refused in one line (exit 2), never waited on.

What was wrong: the installation key was read with a plain open(), so a FIFO at its name
(`$SMP_KEY_DIR/installation-ed25519.pem`) blocked `smp keys show`, `smp run` (after its
`checked against ...` line) and `smp sessions verify` forever, and neither Ctrl-C nor SIGTERM
ended `smp run` (its handler only sets a flag; open() is retried). Every other station file
(config, profile, envelope) is opened non-blocking and refused unless regular. Now the key
is too (smpdevice.records.keys._read_key_file).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ._rev14_smp import SMP, calibrate_here, run_args, smp_here, station_env

KEY = "installation-ed25519.pem"


def _ends_alone(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`smp ARGS`, which must end by itself within 60 s (a hang is forever; a `smp` process on
    a loaded machine can take a few seconds to start); else Ctrl-C (what a technician does
    next), and the test fails saying whether that ended it."""
    child = subprocess.Popen([*SMP, *args], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise AssertionError(f"smp {' '.join(args)} hangs on a FIFO key, Ctrl-C ignored"
                                 ) from None
        raise AssertionError(f"smp {' '.join(args)} hung on a FIFO key until Ctrl-C: "
                             f"{out}{err}") from None
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _refused_in_one_line(result: subprocess.CompletedProcess[str], key: Path) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(key) in lines[0] and "not a regular file" in lines[0], lines[0]


def test_keys_show_refuses_a_fifo_key_file_in_one_line(tmp_path: Path) -> None:
    env = station_env(tmp_path)
    key = Path(env["SMP_KEY_DIR"]) / KEY
    os.mkfifo(key)
    _refused_in_one_line(_ends_alone(env, "keys", "show"), key)
    assert Path(key).is_fifo()  # left as it was: no key made over it


def test_run_refuses_a_fifo_key_file_before_the_session_opens(tmp_path: Path) -> None:
    env = station_env(tmp_path)
    calibrate_here(env)  # set-up in this process; the command under test is a process
    key = Path(env["SMP_KEY_DIR"]) / KEY
    os.mkfifo(key)
    result = _ends_alone(env, *run_args())
    _refused_in_one_line(result, key)
    assert "Session S" not in result.stdout, result.stdout


def test_verify_refuses_a_fifo_key_file_in_one_line(tmp_path: Path) -> None:
    # `smp sessions verify` reads only the public half (load_public): the same refusal
    env = station_env(tmp_path)
    calibrate_here(env)  # set-up in this process; the command under test is a process
    assert smp_here(env, *run_args()).returncode == 0
    key = Path(env["SMP_KEY_DIR"]) / KEY
    key.unlink()
    os.mkfifo(key)
    _refused_in_one_line(_ends_alone(env, "sessions", "verify"), key)
