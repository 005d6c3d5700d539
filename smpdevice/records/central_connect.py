"""A connection to the central store (the schema set up or migrated when it must be), and its
errors: a store that cannot be used (exit 2) and a check that said no (exit 1)."""

from __future__ import annotations

from typing import Any

from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.records import dsn
from smpdevice.records.central_log import quiet_driver
from smpdevice.records.central_schema import SCHEMA as _SCHEMA
from smpdevice.records.central_schema import SCHEMA_VERSION, is_current, setup_refusal


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
    quiet_driver()  # its "error ignored ..." lines on a cut connection: to smp.log
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
                        _set_up(conn, url)
            except psycopg.errors.InsufficientPrivilege as exc:
                conn.close()
                raise _not_set_up(url, _why(exc, url)) from None
            except CentralStoreError:
                conn.close()
                raise
        return conn
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot use the central store {_safe(url)}: "
                                f"{_why(exc, url)}; check the URL, the server and your "
                                "rights on the database") from None


def _set_up(conn: Any, url: str) -> None:
    """Set the store up (or migrate it) where its tables are, as their owner, and check that
    it then is current: a store the setup could not complete is never used."""
    refusal = setup_refusal(conn)
    if refusal is not None:
        why, rights = refusal
        if rights:
            raise _not_set_up(url, why)
        raise CentralStoreError(f"cannot set up the central store {_safe(url)}: {why}")
    conn.execute(_SCHEMA)
    if not is_current(conn):
        raise CentralStoreError(f"cannot use the central store {_safe(url)}: after its setup "
                                f"it still lacks schema {SCHEMA_VERSION}, an enabled guard "
                                "trigger on one of its tables or one of its functions as "
                                "written; nothing was sent")


def _not_set_up(url: str, why: str) -> CentralStoreError:
    return CentralStoreError(
        f"cannot use the central store {_safe(url)}: it is not set up for this smpdevice "
        f"(schema {SCHEMA_VERSION}, every guard trigger, enabled, every function as this "
        "smpdevice writes it) and this role may not set it "
        f"up ({why}): run one sync or verify as the tables' owner first (docs/integration.md)")


def _safe(url: str) -> str:
    """The URL without its passwords (user part, ?password=, sslpassword=)."""
    return dsn.safe(url)


def _why(exc: BaseException, url: str) -> str:
    """The driver's message on one line, without any password of `url` it may quote."""
    return dsn.scrub(" ".join(str(exc).split()), url)
