"""A connection to the central store (the schema set up or migrated when it must be), and its
errors: a store that cannot be used (exit 2) and a check that said no (exit 1)."""

from __future__ import annotations

from typing import Any

from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.records import dsn
from smpdevice.records.central_schema import SCHEMA as _SCHEMA
from smpdevice.records.central_schema import SCHEMA_VERSION, is_current


class CentralStoreError(SmpError):
    """The central store cannot be reached or used (a bad URL, server or rights: exit 2)."""


class CentralRefused(CentralStoreError):
    """A check said no: the local log does not verify, was rewritten, forked or rolled back,
    or is registered to another key. Exit 1, as `smp sessions verify` exits for that log."""

    exit_code = ExitCode.CHECK_FAILED


class NoLogId(CentralStoreError):
    """The log has no id yet (being created): it is never synced or registered."""


def connect(url: str) -> Any:
    """A psycopg connection to `url` (postgresql://...), with the schema in place."""
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise CentralStoreError(f"--to/--against {_safe(url)!r} is not a PostgreSQL URL: give "
                                "postgresql://USER@HOST:PORT/DATABASE")
    try:
        # autocommit: each `with conn.transaction()` below is then a real, committed one.
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10,
                               application_name="smpdevice-sync")
        row = conn.execute("SHOW server_encoding").fetchone()
        encoding = str(row[0]) if row else "unknown"
        if encoding.upper() not in ("UTF8", "UTF-8"):
            raise CentralStoreError(f"the central database's encoding is {encoding}: it must "
                                    "be UTF8 (createdb -E UTF8)")
        if not is_current(conn):  # set up or migrate: needs the owner (the PCs' role reads)
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(7406)")  # one creator at once
                    if not is_current(conn):
                        conn.execute(_SCHEMA)
            except psycopg.errors.InsufficientPrivilege as exc:
                conn.close()
                raise CentralStoreError(
                    f"cannot use the central store {_safe(url)}: it is not set up for this "
                    f"smpdevice (schema {SCHEMA_VERSION}, every guard trigger) and this role "
                    f"may not set it up ({_why(exc, url)}): run one sync or verify as the "
                    "tables' owner first (docs/integration.md)") from None
        return conn
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot use the central store {_safe(url)}: "
                                f"{_why(exc, url)}; check the URL, the server and your "
                                "rights on the database") from None


def _safe(url: str) -> str:
    """The URL without its passwords (user part, ?password=, sslpassword=)."""
    return dsn.safe(url)


def _why(exc: BaseException, url: str) -> str:
    """The driver's message on one line, without any password of `url` it may quote."""
    return dsn.scrub(" ".join(str(exc).split()), url)
