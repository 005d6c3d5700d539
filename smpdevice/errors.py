"""Errors a user can cause. Each message says what went wrong and what to do about it.

The command line prints these as one line (`error: ...`) and exits non-zero; a stack trace is
never the user interface.
"""

from __future__ import annotations


class SmpError(Exception):
    """Base of every error smpdevice reports to a user."""

    exit_code = 2
