"""structlog set-up: console lines for people, JSON lines for machines.

`SMP_LOG_FORMAT=json` switches to JSON lines; `SMP_LOG_LEVEL` (default warning on the command
line) sets how much is said. Context (pen_serial, state, zone, session_id, pass_id) is bound by
the code that knows it.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure(level: str | None = None, fmt: str | None = None) -> None:
    level_name = (level or os.environ.get("SMP_LOG_LEVEL") or "warning").upper()
    fmt = fmt or os.environ.get("SMP_LOG_FORMAT") or "console"
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level_name, logging.WARNING)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def ensure_configured() -> None:
    """Give a program that never configured structlog our defaults (stderr, warnings), so
    the library never prints log lines into a program's standard output."""
    if not structlog.is_configured():
        configure()
