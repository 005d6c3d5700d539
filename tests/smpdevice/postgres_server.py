"""A real, throw-away PostgreSQL server for the central-store tests (no mocks of the database).

`initdb` and `pg_ctl` from the Debian `postgresql` package (or on PATH), run in a temporary
directory as an unprivileged user: initdb refuses root, so as root the server runs as `postgres`
(or `nobody`). Trust authentication on 127.0.0.1 and a free port; fsync is off (a test server:
durability is the tests' business on the SQLite side). When the binaries are absent the tests
skip, saying what to install; `.ci/run` installs the package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = "apt-get install -y --no-install-recommends postgresql"


def server_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").is_file() and Path(candidate, "pg_ctl").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> dict[str, int]:
    """subprocess arguments that run the server as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return {"user": entry.pw_uid, "group": entry.pw_gid}
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def _run(args: list[str], base: Path, who: dict[str, int]) -> None:
    done = subprocess.run(args, cwd=base, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LC_ALL": "C.UTF-8"}, **who)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}{_log(base)}")


def _initdb(bindir: Path, data: Path, base: Path, who: dict[str, int]) -> None:
    _run([str(bindir / "initdb"), "-D", str(data), "-U", "smp", "--auth=trust", "-E", "UTF8",
          "--locale=C.UTF-8", "--no-sync"], base, who)


def make_cluster(bindir: Path, into: Path) -> None:
    """An `initdb` data directory at `into` (absent), never started: a pristine cluster that
    `running_server(bindir, cluster=into)` copies instead of running initdb itself (about
    0.6 CPU-s and 1-2 s of wall). Whole or absent: made aside, then renamed into place."""
    who = _server_user()
    base = Path(tempfile.mkdtemp(prefix="smp-pg-init-"))
    try:
        if who:
            os.chown(base, who["user"], who["group"])
        _initdb(bindir, base / "data", base, who)
        aside = into.with_name(into.name + ".partial")
        shutil.rmtree(aside, ignore_errors=True)
        shutil.move(base / "data", aside)
        aside.rename(into)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running_server(bindir: Path, cluster: Path | None = None) -> Iterator[str]:
    """Start a server; yield the URL of its `postgres` database as superuser `smp`. With
    `cluster` (from `make_cluster`), its data directory is a copy of that one, not initdb's
    own: the same pristine cluster, so the server is the same."""
    who = _server_user()
    base = Path(tempfile.mkdtemp(prefix="smp-pg-"))  # under /tmp: reachable by that user
    data = base / "data"
    if who:
        os.chown(base, who["user"], who["group"])
    port = _free_port()
    try:
        if cluster is None:
            _initdb(bindir, data, base, who)
        else:
            shutil.copytree(cluster, data)  # modes kept (0700, as initdb made it)
            for path in (data, *data.rglob("*")):
                if who:
                    os.chown(path, who["user"], who["group"], follow_symlinks=False)
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w",
              "-t", "120", "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 "
              "-c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start"],
             base, who)
        yield f"postgresql://smp@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                            "stop"], cwd=base, capture_output=True, timeout=60, **who)
        shutil.rmtree(base, ignore_errors=True)


def _log(base: Path) -> str:
    log = base / "server.log"
    return "\n" + log.read_text(errors="replace")[-2000:] if log.is_file() else ""
