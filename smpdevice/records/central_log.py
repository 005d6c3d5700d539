"""The database driver's own log lines, kept off the terminal.

psycopg logs through the standard `logging` module ("error ignored terminating
<psycopg.Copy [BAD]>", "error ignored in rollback of <psycopg.Transaction ...>") when a
connection is cut or a sync interrupted mid-upload; with no handler configured Python prints
them on stderr, beside the one `error:` line a command promises. They go to smpdevice's own log
instead, at info: the detail log (smp.log) keeps them, the terminal shows them only at
`--log-level info` or below.
"""

from __future__ import annotations

import logging


class _ToOwnLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            import structlog

            structlog.get_logger("smpdevice.records.central").info(
                "central_store_driver", driver=record.name, driver_level=record.levelname,
                message=" ".join(record.getMessage().split()))
        except Exception:  # a log line never breaks a sync
            pass


def quiet_driver() -> None:
    """Route psycopg's log records to smpdevice's log (once per process), never to stderr."""
    driver = logging.getLogger("psycopg")
    if not any(isinstance(h, _ToOwnLog) for h in driver.handlers):
        driver.addHandler(_ToOwnLog())
        driver.propagate = False
