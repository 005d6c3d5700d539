"""Work done once per test run, shared by the run's pytest-xdist workers.

`make test` hands tests out one at a time to four workers, so a module- or session-scoped
fixture is still built by every worker that gets one of its tests. A thing built under
`run_lock` is built by the first test that asks, in whichever worker; the others wait on the
lock and reuse it. A build that failed leaves nothing that looks done, so the next test builds
it again: no test depends on another's order or outcome.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's own temporary directory: shared by its workers (each has a subdirectory)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@contextlib.contextmanager
def run_lock(root: Path, name: str) -> Iterator[Path]:
    """Hold the run-wide lock `name` in `root` (see `run_dir`); yields `root`."""
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield root
