"""The contraindication screening at the command line: from a file, or asked at a terminal."""

from __future__ import annotations

import sys

import click

from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode


class ScreeningUnanswered(SmpError):
    """The screening question cannot be asked (standard input closed, at its end or no
    terminal, as in a script) and no --screening was given: exit 1, as any question that gets
    no answer (README "Common tasks"), not 2."""

    exit_code = ExitCode.CHECK_FAILED


def read_screening(path: str):
    """Screening answers from a YAML/JSON file (every question answered true/false)."""
    from smpdevice.sessions.screening import load_screening_file

    return load_screening_file(path)  # the strict loader, then every answer checked


def require_terminal_for_screening() -> None:
    from smpdevice.sessions.screening import QUESTIONS

    if sys.stdin is None or not sys.stdin.isatty():
        raise ScreeningUnanswered(
            "a session needs the contraindication screening: pass --screening FILE "
            "(answers true/false for " + ", ".join(QUESTIONS) + "; e.g. "
            "examples/screening_clear.yaml) or run at a terminal."
        )


def ask_screening():
    """Ask the screening questions at the terminal."""
    from smpdevice.sessions.screening import QUESTIONS, parse_screening

    require_terminal_for_screening()
    click.echo("Contraindication screening (answer for the treatment area):")
    return parse_screening(
        {name: click.confirm(f"  {question}", default=None) for name, (question, _) in
         QUESTIONS.items()}
    )
