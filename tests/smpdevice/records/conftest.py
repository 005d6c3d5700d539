"""One real PostgreSQL server per test process for the central-store tests, a fresh database
per test (`url`). The server was per module: every module of these tests that a pytest-xdist
worker ran a test of started its own (initdb and a start, about a CPU-second and 2-13 s of wall
each, some 13 times in a run of the suite); a server shared across modules changes nothing a
test sees, as each gets its own database and the roles they add are named afresh."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.run_once import run_dir, run_lock
from tests.smpdevice.postgres_server import (
    INSTALL_HINT,
    make_cluster,
    running_server,
    server_bindir,
)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    bindir = server_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL server binaries (initdb, pg_ctl) here: {INSTALL_HINT}")
    root = run_dir(tmp_path_factory)
    cluster = root / "pg-cluster"
    with run_lock(root, "pg-cluster"):
        if not cluster.is_dir():
            make_cluster(bindir, cluster)
    with running_server(bindir, cluster) as url:
        yield url


@pytest.fixture
def url(server_url: str) -> Iterator[str]:
    """A fresh database per test."""
    psycopg = pytest.importorskip("psycopg")
    name = "smp_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server_url.rsplit("/", 1)[0] + "/" + name
