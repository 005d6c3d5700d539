"""Contraindication screening, asked before a session is opened.

Every question must be answered yes or no: there are no defaults, because an unanswered question
is not a "no". Any "yes" refuses the session (`ScreeningRefused`, with the reasons). The
questions are about the treatment area, except keloid tendency, which counts anywhere on the body.

    screening = parse_screening({"open_sores": False, ..., "keloid_tendency": False})
    screening.require_clear()           # raises ScreeningRefused on any "yes"
    passlog.open_session(..., screening=screening.as_record())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.issues import escaped
from smpdevice.loader import load_file

# field: (question, reason given when the answer is yes)
QUESTIONS: dict[str, tuple[str, str]] = {
    "open_sores": (
        "Are there open sores, cuts or wounds on the treatment area?",
        "open sores on the treatment area: wait until they have fully healed",
    ),
    "eczema": (
        "Is there eczema on the treatment area?",
        "eczema on the treatment area: treat it and wait until the skin is clear",
    ),
    "dermatitis": (
        "Is there dermatitis (e.g. seborrhoeic) on the treatment area?",
        "dermatitis on the treatment area: treat it and wait until the skin is clear",
    ),
    "psoriasis_flare": (
        "Is psoriasis flaring on the treatment area?",
        "psoriasis flare on the treatment area: wait until the flare has settled",
    ),
    "infection": (
        "Is there an active infection (e.g. folliculitis) on the treatment area?",
        "active infection on the treatment area: wait until it has cleared",
    ),
    "sunburn": (
        "Is the treatment area sunburnt?",
        "sunburn on the treatment area: wait until it has healed",
    ),
    "keloid_tendency": (
        "Has the client formed keloid scars anywhere on the body?",
        "keloid tendency: do not treat; refer the client to a physician",
    ),
}


def _question(name: str) -> Any:
    return Field(description=QUESTIONS[name][0])


class Screening(BaseModel):
    """The answers (True = yes) for one client before one session. All are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    open_sores: StrictBool = _question("open_sores")
    eczema: StrictBool = _question("eczema")
    dermatitis: StrictBool = _question("dermatitis")
    psoriasis_flare: StrictBool = _question("psoriasis_flare")
    infection: StrictBool = _question("infection")
    sunburn: StrictBool = _question("sunburn")
    keloid_tendency: StrictBool = _question("keloid_tendency")

    def refusal_reasons(self) -> list[str]:
        """Why the session must not go ahead; empty when every answer is no."""
        return [reason for name, (_, reason) in QUESTIONS.items() if getattr(self, name)]

    def require_clear(self) -> None:
        """Raise `ScreeningIncomplete` when an answer is missing or not true/false (a copy
        made with `model_copy(update=...)` skipped pydantic's checks: None is not a "no"),
        `ScreeningRefused` when any answer is yes."""
        reasons = checked_screening(self).refusal_reasons()
        if reasons:
            raise ScreeningRefused(reasons)

    def as_record(self) -> dict[str, bool]:
        """The answers as stored in the pass log with the session (checked whole first)."""
        return checked_screening(self).model_dump()


class ScreeningRefused(SmpError):
    """A contraindication was reported: the session is refused. `reasons` says why."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("session refused by the contraindication screening: "
                         + "; ".join(reasons))


class ScreeningIncomplete(SmpError):
    """The answers are missing, malformed or unknown: nothing was decided, ask again."""


def checked_screening(screening: object, source: str | None = None) -> Screening:
    """`screening` validated again whole, as `parse_screening` checks answers: a copy made
    with `model_copy(update=...)` may hold None, a text or an unknown question.
    InvalidArgument for anything not a Screening, ScreeningIncomplete naming the question."""
    checks.instance("screening", screening, Screening, "a Screening: parse_screening(answers)")
    return parse_screening(dict(vars(screening)), source=source)


def load_screening_file(path: str | Path) -> Screening:
    """Answers from a YAML or JSON file, read by the strict loader (`LoadError`: size cap,
    duplicate keys such as an answer given twice, YAML 1.2 so `yes` is text, not true), then
    checked by `parse_screening`."""
    return parse_screening(load_file(path), source=str(path))


def parse_screening(data: Any, source: str | None = None) -> Screening:
    """Build a `Screening` from answers, with one clear error naming every unanswered or
    malformed question (answers must be true/false, not strings)."""
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ScreeningIncomplete(f"{where}screening answers must be a mapping of question to "
                                  "true/false")
    # A key that is not readable text (a lone surrogate, valid JSON) stops pydantic before it
    # names the rest: it is set aside as an unknown question and the others checked.
    unreadable = [key for key in data if isinstance(key, str) and not _is_text(key)]
    errors: list[Any] = [{"type": "extra_forbidden", "loc": (key,)} for key in unreadable]
    try:
        screening = Screening.model_validate({k: v for k, v in data.items()
                                              if k not in unreadable})
    except ValidationError as exc:
        errors = exc.errors(include_url=False) + errors
    if not errors:
        return screening
    raise ScreeningIncomplete(f"{where}screening incomplete: " + _what_is_wrong(errors)) from None


def _is_text(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _what_is_wrong(errors: list[Any]) -> str:
    """pydantic's errors as the questions unanswered, not true/false, and unknown."""
    # Names are escaped (a key from a file may hold terminal controls) and cut short: an
    # unknown key may be as long as the file.
    def name(error: Any) -> str:
        loc = error.get("loc") or (error.get("input", "?"),)  # an empty loc: never indexed
        return escaped(str(loc[0]))[:40]

    unanswered = [name(e) for e in errors if e["type"] == "missing"]
    unknown = [name(e) for e in errors if e["type"] == "extra_forbidden"]
    bad = [name(e) for e in errors if e["type"] not in ("missing", "extra_forbidden")]
    parts = []
    if unanswered:
        parts.append("unanswered: " + ", ".join(unanswered)
                     + " (an unanswered question is not a no; ask it)")
    if bad:
        parts.append("not true/false: " + ", ".join(bad)
                     + " (write true or false; yes/no are text in YAML 1.2)")
    if unknown:
        parts.append("unknown questions: " + ", ".join(unknown[:5])
                     + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                     + f" (known: {', '.join(QUESTIONS)})")
    return "; ".join(parts)
