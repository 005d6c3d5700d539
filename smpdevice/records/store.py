"""The storage interface of the pass log: what sessions, the CLI and sync need from a backend.

`smpdevice.records.sqlite.PassLog` (one SQLite file on the PC) implements it; a clinic chain's
central PostgreSQL store (`smpdevice.records.central`) receives the same chained records. A new
backend implements these methods, keeps every write durable when the call returns, and raises
`PassLogError` for every storage failure (the controller stops the needle on it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

from smpdevice.records.chain import BrokenLink, ChainRecord
from smpdevice.records.export import ExportFilter
from smpdevice.records.model import PassOutcome, PassRecord, PassStats, SessionRecord
from smpdevice.records.signing import Receipt


@runtime_checkable
class RecordStore(Protocol):
    """A pass log: append-only chained records plus provisional checkpoints."""

    # --- writing (each durable when it returns) ---
    def open_session(self, *, technician: str, client_ref: str, session_kind: str,
                     pen_serial: str, firmware_version: str, calibration_id: str,
                     profile_hash: str, screening: dict[str, Any], simulated: bool,
                     envelope: dict[str, Any] | None = None,
                     opened_at: datetime | None = None,
                     profile: dict[str, Any] | None = None,
                     footswitch: str | None = None) -> str: ...

    def resume_session(self, session_id: str, *, resumed_at: datetime,
                       details: dict[str, Any]) -> None: ...

    def begin_pass(self, session_id: str, *, index: int, zone: str, depth_mm: float,
                   speed_hz: float, duty_pct: float, period_ms: float,
                   started_at: datetime,
                   pen_counters: Mapping[str, int] | None = None,
                   calibration: Mapping[str, Any] | None = None) -> str: ...

    def checkpoint(self, pass_id: str, stats: PassStats) -> None: ...

    def end_pass(self, pass_id: str, *, outcome: PassOutcome | str, stats: PassStats,
                 ended_at: datetime, fault_code: int | None = None,
                 fault_names: list[str] | None = None) -> None: ...

    def close_session(self, session_id: str, *, closed_at: datetime,
                      summary: dict[str, Any]) -> Receipt: ...

    # --- reading ---
    def sessions(self) -> list[SessionRecord]: ...

    def session(self, session_id: str) -> SessionRecord: ...

    def resumptions(self, session_id: str) -> list[dict[str, Any]]: ...

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        """Passes in the order begun: of session `session_id`, or every pass of the log when
        it is None (the default); an id that is no text is refused (`InvalidArgument`)."""
        ...

    def records(self, after_seq: int = 0) -> Iterator[ChainRecord]: ...

    def head(self) -> tuple[int, str]: ...

    def verify(self) -> BrokenLink | None: ...

    def export(self, fmt: Literal["jsonl", "csv"], out: TextIO, *, identified: bool = False,
               where: ExportFilter | None = None) -> int: ...

    def close(self) -> None: ...
