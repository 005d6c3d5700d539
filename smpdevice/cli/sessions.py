"""`smp sessions`: read, export and verify the pass log. Read-only: safe while a pen runs."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from smpdevice.passlog import PassLog, PassRecord
from smpdevice.records.export import ExportFilter, jsonl_schema

_DB_HELP = ("Pass-log file. Default: $SMP_DATA_DIR/passlog.sqlite, else "
            "~/.local/share/smpdevice/passlog.sqlite.")


def _db_option(fn):
    return click.option("--db", "db", type=click.Path(dir_okay=False), default=None,
                        help=_DB_HELP)(fn)


def _open(db: str | None) -> PassLog:
    # Read-only: never competes with a running controller and never "recovers" its live pass.
    return PassLog.open(db, readonly=True)


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


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


def _when_option(name: str, help_: str):
    return click.option(name, type=click.DateTime(_WHEN_FORMATS), default=None,
                        metavar="DATE[THH:MM]", help=help_)


def _filter_options(fn):
    fn = _when_option("--until", "Only passes/sessions begun before the end of this day (or "
                      "before this time), UTC.")(fn)
    fn = _when_option("--since", "Only passes/sessions begun on or after this day or time, "
                      "UTC.")(fn)
    fn = click.option("--client", metavar="REF", help="Only this client's.")(fn)
    return click.option("--session", "session_id", metavar="ID",
                        help="Only this session (its id or a unique prefix).")(fn)


_WHEN_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def _filter(session_id: str | None, client: str | None, since: datetime | None,
            until: datetime | None) -> ExportFilter:
    if until is not None and until.hour == until.minute == until.second == 0:
        until += timedelta(days=1)  # a day given: up to the end of that day
    utc = (lambda d: None if d is None else d.replace(tzinfo=UTC))  # noqa: E731
    if since is not None and until is not None and utc(until) <= utc(since):
        raise click.BadParameter(f"--until {until:%Y-%m-%d %H:%M} is not after --since "
                                 f"{since:%Y-%m-%d %H:%M}; give a later --until",
                                 param_hint="--until")
    return ExportFilter(session=session_id, client=client, since=utc(since), until=utc(until))


@sessions.command("list")
@_db_option
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as JSON.")
def list_(db: str | None, session_id: str | None, client: str | None,
          since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """List the sessions, oldest first (all, or those the filters select).

    \b
    Examples:
      smp sessions list --db ./passlog.sqlite
      smp sessions list --client C-0042 --since 2025-01-01 --json
    """
    where = _filter(session_id, client, since, until)
    with _open(db) as log:
        rows = [s for s in log.sessions()
                if where.matches(s.session_id, s.client_ref, s.opened_at)]
    if as_json:
        click.echo(json.dumps([{k: v for k, v in s.__dict__.items() if k != "passes"}
                               for s in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} sessions")
    for col in ("session", "opened", "client", "kind", "technician", "pen", "simulated",
                "passes", "closed"):
        table.add_column(col, justify="right" if col == "passes" else "left")
    for s in rows:
        table.add_row(s.session_id, _when(s.opened_at), s.client_ref, s.session_kind,
                      s.technician, s.pen_serial, simulated_text(s.simulated), str(s.pass_count),
                      _when(s.closed_at) if s.closed_at else "open")
    _console().print(table)


@sessions.command()
@click.argument("session_id")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the session and passes as JSON.")
def show(session_id: str, db: str | None, as_json: bool) -> None:
    """Show one session (ID or a unique prefix of it) with every pass and its figures.

    \b
    Example:
      smp sessions show S3f2a
    """
    with _open(db) as log:
        s = log.session(session_id)
    if as_json:
        data = {**s.__dict__, "passes": [p.as_dict() for p in s.passes]}
        click.echo(json.dumps(data, indent=2))
        return
    console = _console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("session", s.session_id), ("client", s.client_ref), ("kind", s.session_kind),
        ("technician", s.technician), ("pen", f"{s.pen_serial} (firmware {s.firmware_version})"),
        ("simulated", simulated_text(s.simulated)),
        ("envelope sha256", s.envelope_sha256 or "not recorded"),
        ("calibration", s.calibration_id), ("profile hash", s.profile_hash),
        ("opened", s.opened_at), ("closed", s.closed_at or "open"),
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


@sessions.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl: one JSON object a line; csv: a header and one row a pass.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="File to write (default: standard output).")
@click.option("--identified", is_flag=True,
              help="Write real client references and technician names (default: "
                   "pseudonyms, stable per person on this installation).")
@_db_option
@_filter_options
def export(fmt: str, output, identified: bool, db: str | None, session_id: str | None,
           client: str | None, since: datetime | None, until: datetime | None) -> None:
    """Export passes, with their session's identity, as JSON lines or CSV.

    Pseudonymous by default; screening answers are never exported. CSV is safe to open in a
    spreadsheet (cells that would run as formulas are prefixed with '). `smp sessions
    schema` prints the JSON Schema of a JSONL line.

    \b
    Examples:
      smp sessions export --format csv --output passes.csv
      smp sessions export --format jsonl --client C-0042 --since 2025-01-01 | jq .outcome
    """
    where = _filter(session_id, client, since, until)
    with _open(db) as log:
        count = log.export(fmt, output, identified=identified,  # type: ignore[arg-type]
                           where=where)
    if output is not sys.stdout and getattr(output, "name", "-") != "<stdout>":
        click.echo(f"exported {count} passes to {output.name}", err=True)


@sessions.command()
def schema() -> None:
    """Print the JSON Schema of one line of `smp sessions export --format jsonl`.

    \b
    Example:
      smp sessions schema > pass-record.schema.json
    """
    click.echo(json.dumps(jsonl_schema(), indent=2))


@sessions.command()
@_db_option
@click.option("--receipt", "receipts", multiple=True, metavar="TEXT|FILE",
              help="Also check a receipt someone kept (its text, or a file holding it, e.g. "
                   "a scanned aftercare sheet's text). Repeatable.")
@click.option("--anchors", "anchors_file", type=click.Path(dir_okay=False, exists=True),
              help="The anchors file to check against (default: passlog.anchors.jsonl beside "
                   "the log).")
@click.option("--no-anchors", is_flag=True,
              help="Do not check an anchors file (e.g. a backup copied without it).")
@click.option("--trust-log-keys", is_flag=True,
              help="Check signatures against the keys the log itself records (a log of "
                   "another installation); compare the printed fingerprint with that "
                   "installation's `smp keys show`.")
@click.option("--allow-unsigned", is_flag=True,
              help="Accept a log written before heads were signed (checks the plain chain).")
@click.option("--against", metavar="postgresql://...",
              help="Also compare the log with a clinic chain's central store.")
def verify(db: str | None, receipts: tuple[str, ...], anchors_file: str | None,
           no_anchors: bool, trust_log_keys: bool, allow_unsigned: bool,
           against: str | None) -> None:
    """Check the whole log; exit 1 naming the first record that does not hold.

    Checks that every record is intact and linked, that the log ends where its signed head
    says, that every record is covered by a head signed with this installation's key, and
    that the log still holds every receipt in the anchors file (and each --receipt given).

    \b
    Examples:
      $ smp sessions verify
      ok: 412 records, chain intact, signed by this installation's key ...; 9 receipts hold
      smp sessions verify --db /mnt/b/passlog.sqlite --anchors /mnt/b/passlog.anchors.jsonl
      smp sessions verify --receipt "SMP-RECEIPT/1 S3f2a... #412 9c1e... Qm9v..."
    """
    from smpdevice.records.keys import load_public
    from smpdevice.records.signing import Receipt, read_anchors

    kept = [(f"--receipt {i}", Receipt.parse(_text_or_file(r)))
            for i, r in enumerate(receipts, start=1)]
    anchors: bool | list = not no_anchors
    if anchors_file and not no_anchors:
        anchors = [(f"{anchors_file}, line {i}", r)
                   for i, r in enumerate(read_anchors(Path(anchors_file)), start=1)]
    own = None if trust_log_keys else load_public()
    with _open(db) as log:
        result = log.audit(trusted={own.fingerprint: own} if own else None, anchors=anchors,
                           receipts=kept, allow_unsigned=allow_unsigned)
        central = None
        if against and result.ok:
            from smpdevice.records.central import compare

            central = compare(log, against)
            if central.problem:
                click.secho(f"differs from the central store: {central.problem}", fg="red")
                sys.exit(1)
    if result.problem is not None:
        click.secho(f"broken link: {result.problem}", fg="red")
        if "not a trusted key" in str(result.problem):
            click.echo("If this log comes from another installation, check it with "
                       "--trust-log-keys and compare the key fingerprint with that "
                       "installation's `smp keys show`.")
        sys.exit(1)
    fingerprints = ", ".join(result.key_fingerprints) or "none"
    whose = ("this installation's key" if result.key_trusted
             else "the key(s) the log records (not checked against this installation)")
    click.secho(f"ok: {result.count} records, chain intact, signed by {whose} "
                f"{fingerprints} ({result.signatures_checked} signed heads); "
                f"{result.anchors_checked} receipts hold; head {result.count} "
                f"{result.head_hash}", fg="green")
    if central is not None:
        click.secho(f"ok: the central store holds this log up to record "
                    f"{central.central_count}, identical to the local records", fg="green")


@sessions.command()
@click.option("--to", "url", required=True, metavar="postgresql://...",
              help="The clinic chain's central PostgreSQL database.")
@_db_option
def sync(url: str, db: str | None) -> None:
    """Push the log's new records to a clinic chain's central PostgreSQL store.

    Append-only and idempotent (records already there are not sent again), resumable (run it
    again after a cut connection). On the first sync the log and this installation's public
    key are registered. A local log that was rewritten, forked or rolled back is refused,
    naming the first record that differs. Safe while a pen runs (reads only).

    \b
    Example:
      smp sessions sync --to postgresql://smp@db.clinic.example/smp
    """
    from smpdevice.records.central import sync as push
    from smpdevice.records.keys import InstallationKey

    key = InstallationKey.load_or_create()
    with _open(db) as log:
        result = push(log, url, key)
    click.echo(f"synced log {result.log_id}: {result.sent} new records sent; the central "
               f"store holds records 1..{result.central_head}"
               + (" (log registered)" if result.registered else ""))


def _text_or_file(value: str) -> str:
    """A receipt given as its text or as the path of a file holding it."""
    path = Path(value)
    if len(value) < 4096 and "SMP-RECEIPT/" not in value and path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")[:65536]
    return value


def simulated_text(flag: bool | None) -> str:
    """yes / no, or unknown for records written before smpdevice recorded it."""
    return "unknown" if flag is None else "yes" if flag else "no"


def _summary_table(summary: dict) -> Table:
    table = Table(title="summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if isinstance(value, dict):
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
