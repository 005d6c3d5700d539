"""A refused `smp demo --web` opens and writes nothing (docs/service.md: "A start that cannot
succeed is refused before the pen is opened (one line, exit 2) ... Nothing else is opened").
It started its simulated pen, calibrated it and saved that calibration into the data
directory's calibrations.sqlite (a running service's store: one row more) before it refused
for another `smp serve` on the directory or a listen port in use."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path


def _calibrations(directory: Path) -> int:
    path = directory / "calibrations.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("select count(*) from calibrations").fetchone()[0]


def _demo_web(directory: Path, listen: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMP_DATA_DIR": str(directory), "SMP_SIM_CLOCK": "virtual"}
    return subprocess.run([sys.executable, "-m", "smpdevice", "demo", "--web", "--listen",
                           listen, "--no-browser"], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_a_refused_demo_web_leaves_the_running_services_store_alone(service, data_dir):
    before = _calibrations(data_dir)
    done = _demo_web(data_dir, "127.0.0.1:0")
    assert done.returncode == 2, done
    assert "stop it first" in done.stderr, done
    assert _calibrations(data_dir) == before, "the refused demo saved a calibration into " \
                                              "the running service's store"
    assert done.stdout.strip() == "", f"more than the one refusal line: {done.stdout!r}"


def test_a_demo_web_refused_for_its_listen_port_calibrates_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _demo_web(tmp_path / "data", f"127.0.0.1:{taken.getsockname()[1]}")
    assert done.returncode == 2, done
    assert "Pick another --listen port" in done.stderr, done
    assert _calibrations(tmp_path / "data") == 0, "the refused demo saved a calibration"
    assert done.stdout.strip() == "", f"more than the one refusal line: {done.stdout!r}"
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_demo_web_refused_for_its_token_file_calibrates_nothing(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    tokens = directory / "service.tokens.json"
    tokens.write_text("{damaged")
    tokens.chmod(0o600)
    done = _demo_web(directory, "127.0.0.1:0")
    assert done.returncode == 2, done
    assert "is damaged" in done.stderr, done
    assert _calibrations(directory) == 0, "the refused demo saved a calibration"
    assert done.stdout.strip() == "", f"more than the one refusal line: {done.stdout!r}"
