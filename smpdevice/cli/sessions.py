"""`smp sessions`: read, export and verify the pass log. Read-only: safe while a pen runs.

This module has the group, `list` and `show`; `export` and `schema` are in sessions_export,
`verify` in sessions_verify, `sync` in sessions_sync."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table

from smpdevice.cli.sessions_common import (
    db_option,
    end_partial,
    filter_options,
    make_console,
    make_filter,
    nothing_recorded,
    nothing_yet,
    open_all,
    resolve_session,
)
from smpdevice.cli.sessions_export import export, schema
from smpdevice.cli.sessions_sync import sync
from smpdevice.cli.sessions_verify import verify

if TYPE_CHECKING:
    from smpdevice.records.model import PassRecord


@click.group()
def sessions() -> None:
    """List, show, export and verify the sessions and passes in the pass log.

    \b
    Examples:
      smp sessions list
      smp sessions show S3f2a          (a unique prefix of the id is enough)
      smp sessions export --format csv --output passes.csv
      smp sessions verify --db /mnt/backup/passlog.sqlite
    """


@sessions.command("list")
@db_option
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as JSON.")
def list_(db: str | None, session_id: str | None, client: str | None,
          since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """List the sessions, oldest first (all, or those the filters select).

    \b
    Examples:
      smp sessions list --db ./passlog.sqlite
      smp sessions list --client C-0042 --since 2025-01-01 --json
    """
    where = make_filter(session_id, client, since, until)
    from smpdevice.records.logset import all_sessions, sessions_of

    with open_all(db) as logs:
        read = sessions_of(logs)  # once: the --session id is resolved in the same rows
        rows = all_sessions(logs, resolve_session(logs, where, read)[0], read)
    if as_json:
        click.echo(json.dumps([{k: v for k, v in s.__dict__.items() if k != "passes"}
                               for s in rows], indent=2))
        end_partial()
        return
    fresh = nothing_recorded(db)
    if fresh is not None:  # a new station: nothing recorded is no error (exit 0)
        click.echo(nothing_yet(fresh))
        return
    table = Table(title=f"{len(rows)} sessions")
    for col in ("session", "opened", "client", "kind", "technician", "pen", "simulated",
                "passes", "closed"):
        table.add_column(col, justify="right" if col == "passes" else "left")
    for s in rows:
        table.add_row(s.session_id, _when(s.opened_at), s.client_ref, s.session_kind,
                      s.technician, s.pen_serial, simulated_text(s.simulated), str(s.pass_count),
                      _when(s.closed_at) if s.closed_at else "open")
    make_console().print(table)
    end_partial()  # exit 3 when a log of the data directory could not be read


@sessions.command()
@click.argument("session_id")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the session and passes as JSON.")
def show(session_id: str, db: str | None, as_json: bool) -> None:
    """Show one session (ID or a unique prefix of it) with every pass and its figures.

    \b
    Example:
      smp sessions show S3f2a
    """
    from smpdevice.records.logset import find_session

    with open_all(db) as logs:  # the id resolved as resume, close and the service do
        log, s = find_session(logs, session_id, hint="`smp sessions list` shows the ids")
        resumed = _resumptions(log, s.session_id)
    if as_json:
        data = {**s.__dict__, "resumptions": resumed,
                "passes": [p.as_dict() for p in s.passes]}
        click.echo(json.dumps(data, indent=2))
        end_partial()
        return
    console = make_console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("session", s.session_id), ("client", s.client_ref), ("kind", s.session_kind),
        ("technician", s.technician), ("pen", f"{s.pen_serial} (firmware {s.firmware_version})"),
        ("simulated", simulated_text(s.simulated)),
        ("envelope sha256", s.envelope_sha256 or "not recorded"),
        ("calibration", s.calibration_id), ("profile hash", s.profile_hash),
        ("opened", s.opened_at),
        *(("resumed", _resumed_text(r)) for r in resumed),
        ("closed", s.closed_at or "open"),
        ("screening", ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in s.screening.items())),
    ):
        head.add_row(label, str(value))
    console.print(head)
    table = Table(title=f"{len(s.passes)} passes",
                  caption="burst Hz: mean speed while the motor turns; mean Hz: duty-weighted "
                          "mean over the whole pass (rests included)")
    for col in ("#", "zone", "depth mm", "speed Hz", "duty %", "period ms", "depth min/mean/max",
                "burst Hz", "mean Hz", "strokes", "impr.", "seconds", "outcome"):
        table.add_column(col, justify="left" if col in ("zone", "outcome") else "right",
                         no_wrap=col == "outcome")
    for p in s.passes:
        table.add_row(str(p.number), p.zone, f"{p.depth_mm:g}", f"{p.speed_hz:g}",
                      f"{p.duty_pct:g}", f"{p.period_ms:g}", _depths(p), _num(p.speed_burst_hz),
                      _num(p.speed_mean_hz), str(p.strokes), str(p.impressions), _seconds(p),
                      _outcome(p))
    console.print(table)
    if s.summary:
        console.print(_summary_table(s.summary))
    end_partial()



for _command in (export, schema, verify, sync):
    sessions.add_command(_command)


def _resumptions(log: object, session_id: str) -> list[dict[str, object]]:
    """The session's resumptions that played (not a crash's count alone): who, on what, from
    which pass; the passes after one were played by its technician on its calibration."""
    read = getattr(log, "resumptions", None)
    return [{"number": r.get("number"), "resumed_at": r["resumed_at"],
             "technician": r.get("technician"), "calibration_id": r.get("calibration_id"),
             "firmware_version": r.get("firmware_version"),
             "envelope_sha256": r.get("envelope_sha256"),
             "first_pass": (r["passes_before"] + 1 if r.get("passes_before") is not None
                            else None)}
            for r in (read(session_id) if read else []) if not r.get("count_only")]


def _resumed_text(r: dict[str, object]) -> str:
    first = f" from pass {r['first_pass']}" if r["first_pass"] is not None else ""
    return (f"{r['resumed_at']} by {r['technician'] or 'unknown'}, calibration "
            f"{r['calibration_id'] or 'not recorded'}{first}")


def simulated_text(flag: bool | None) -> str:
    """yes / no, or unknown for records written before smpdevice recorded it."""
    return "unknown" if flag is None else "yes" if flag else "no"


def _summary_table(summary: dict) -> Table:
    from smpdevice.sessions.session_records import interruption_words, interruptions_between

    table = Table(title="summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if key in ("interruptions_between", "interrupted_between"):  # a list, or rev 20's dict
            key, value = "interruptions_between", "; ".join(
                interruption_words(i) for i in interruptions_between(summary)) or value
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v if not isinstance(v, dict) else _flat(v)}"
                              for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    return table


def _flat(values: dict) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in values.items()) + ")"


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _depths(p: PassRecord) -> str:
    if not p.samples:
        return "-"
    return f"{p.depth_min_mm:.3f}/{p.depth_mean_mm:.3f}/{p.depth_max_mm:.3f}"


def _seconds(p: PassRecord) -> str:
    if not p.ended_at:
        return "-"
    delta = datetime.fromisoformat(p.ended_at) - datetime.fromisoformat(p.started_at)
    return f"{delta.total_seconds():.1f}"


def _outcome(p: PassRecord) -> str:
    if p.outcome is None:
        return "in progress"
    if p.fault_code is not None:
        return f"{p.outcome} {p.fault_code} {','.join(p.fault_names)}".strip()
    return p.outcome + (" (recovered)" if p.recovered else "")
