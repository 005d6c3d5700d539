"""Option types that hold for every input, not only the listed ones.

click's FloatRange lets `nan` through (every comparison with NaN is false, so no bound
refuses it) and an open-ended IntRange lets through integers no store can hold. These refuse
both while the command line is parsed, before a pen moves (exit 2, one line).
"""

from __future__ import annotations

import math
from typing import Any

import click

# A count a person asks for (--limit): far above any real list, far below SQLite's 2**63.
MAX_COUNT = 1_000_000


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan (and inf, even where no bound would)."""

    name = "float"  # "'x' is not a valid float."

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give a number in the range "
                      f"{self._describe_range()}.", param, ctx)
        return number


def finite_float(minimum: float | None = None, maximum: float | None = None) -> FiniteFloatRange:
    return FiniteFloatRange(minimum, maximum)


def count(minimum: int = 1, maximum: int = MAX_COUNT) -> click.IntRange:
    """A bounded count: `--limit 99999999999999999999` is refused as an option, not later as
    a damaged database."""
    return click.IntRange(minimum, maximum)
