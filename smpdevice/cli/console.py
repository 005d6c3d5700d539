"""The command line's rich Console: readable when piped, and at any width.

Piped to a file or another program, rich never inserts line breaks (`soft_wrap`): each line is
the program's own, whole, so a number never lands on another line than its unit, a receipt or a
command stays copyable, and `grep` finds what was printed. At a terminal, rich wraps to its
width but never between a number and its unit (a non-breaking space joins them).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console

UNITS = r"(?:mm|µm|um|Hz|kHz|ms|s|%|A|mA|°C|C|V|MiB|KiB|KB|MB|days?)"
_NUMBER_UNIT = re.compile(rf"(\d)[ ]+({UNITS})(?![\w])")
NBSP = "\u00a0"


def keep_units(text: str) -> str:
    """`0.40 mm` -> `0.40\u00a0mm`: a wrap never separates a number from its unit."""
    return _NUMBER_UNIT.sub(rf"\1{NBSP}\2", text)


class CliConsole(Console):
    """`Console.print` with number-unit pairs kept together when rich wraps."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.soft_wrap and not kwargs.get("soft_wrap"):
            objects = tuple(keep_units(o) if isinstance(o, str) else o for o in objects)
        super().print(*objects, **kwargs)


def cli_console(stderr: bool = False, **kwargs: Any) -> Console:
    """A Console for command output: no wrapping when piped, unit-safe wrapping at a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    try:  # a stream Python could not open (its fd closed at start) is None: not a terminal
        is_tty = bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        is_tty = False
    return CliConsole(stderr=stderr, soft_wrap=not is_tty, **kwargs)
