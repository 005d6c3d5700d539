"""`smp sessions`: read, export and verify the pass log. Read-only: safe while a pen runs."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from smpdevice.passlog import PassLog, PassRecord
from smpdevice.records.export import ExportFilter, jsonl_schema

_DB_HELP = ("Pass-log file. Default: every log of the data directory, read as one: "
            "passlog.sqlite and each pen's passlog-<serial>.sqlite (two chairs) in "
            "$SMP_DATA_DIR, else ~/.local/share/smpdevice.")


def _db_option(fn):
    return click.option("--db", "db", type=click.Path(dir_okay=False), default=None,
                        help=_DB_HELP)(fn)


def _open(db: str | None) -> PassLog:
    # Read-only: never competes with a running controller and never "recovers" its live pass.
    return PassLog.open(db, readonly=True)


def _existing_logs(db: str | None) -> list[Path]:
    """--db alone, else the station's log and every pen's own log in the data directory
    (the station's even if absent when it is the only one: its absence is then reported)."""
    from smpdevice.paths import pass_log_paths

    paths = pass_log_paths(db)
    return [p for i, p in enumerate(paths) if i > 0 or p.exists() or len(paths) == 1]


@contextlib.contextmanager
def _open_all(db: str | None) -> Iterator[list[PassLog]]:
    """Every log `smp sessions` reads as one, open read-only."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_open(str(p))) for p in _existing_logs(db)]


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
    with _open_all(db) as logs:
        rows = sorted((s for log in logs for s in log.sessions()
                       if where.matches(s.session_id, s.client_ref, s.opened_at)),
                      key=lambda s: s.opened_at)
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


def _find_session(logs: list[PassLog], session_id: str):
    from smpdevice.errors import SmpError

    found, errors = [], []
    for log in logs:
        try:
            found.append(log.session(session_id))
        except SmpError as exc:
            errors.append(exc)
    if len(found) > 1:
        raise SmpError(f"{session_id!r} matches sessions in several logs; give more of the id")
    if found:
        return found[0]
    raise next((e for e in errors if "several" in str(e)), errors[0])


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
    with _open_all(db) as logs:
        s = _find_session(logs, session_id)
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
@click.option("--output", "-o", "output_path", default="-", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write, made private (0600) whatever the umask (default: "
                   "standard output).")
@click.option("--identified", is_flag=True,
              help="Write real client references and technician names (default: "
                   "pseudonyms, stable per person on this installation).")
@_db_option
@_filter_options
def export(fmt: str, output_path: str, identified: bool, db: str | None, session_id: str | None,
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
    with _open_all(db) as logs, _private_output(output_path) as output:
        if len(logs) == 1:
            count = logs[0].export(fmt, output, identified=identified,  # type: ignore[arg-type]
                                   where=where)
        else:
            count = _export_all(logs, fmt, output, identified, where)
    if output_path != "-":
        click.echo(f"exported {count} passes to {output_path}", err=True)


@contextlib.contextmanager
def _private_output(path: str) -> Iterator[TextIO]:
    """Standard output for "-", else the file, 0600: exports name clients (--identified)."""
    from smpdevice.errors import SmpError
    from smpdevice.records.files import open_private_text

    if path == "-":
        yield sys.stdout
        return
    try:
        handle = open_private_text(Path(path))
    except OSError as exc:
        raise SmpError(f"cannot write --output {path}: {exc.strerror or exc}; give a file in a "
                       "directory you can write") from exc
    with handle:
        yield handle


def _export_all(logs: list[PassLog], fmt: str, output, identified: bool, where) -> int:
    """Every log's passes, one after the other; a CSV keeps one header line."""
    count = 0
    for i, log in enumerate(logs):
        buffer = io.StringIO(newline="")
        count += log.export(fmt, buffer, identified=identified,  # type: ignore[arg-type]
                            where=where)
        text = buffer.getvalue()
        if fmt == "csv" and i > 0:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        output.write(text)
    return count


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
@click.option("--key", "named_keys", multiple=True, metavar="FINGERPRINT",
              help="Trust this key instead of this installation's: the fingerprint `smp keys "
                   "show` prints on the installation that wrote the log (also in every "
                   "session header), or its public key. Repeatable. For an auditor's or a "
                   "backup machine.")
@click.option("--trust-log-keys", is_flag=True,
              help="Check signatures against the keys the log itself records (proves the log "
                   "is consistent, not who signed it); compare the printed fingerprint with "
                   "that installation's `smp keys show`.")
@click.option("--allow-unsigned", is_flag=True,
              help="Accept a log written before heads were signed (checks the plain chain).")
@click.option("--against", metavar="postgresql://...",
              help="Also compare the log with a clinic chain's central store.")
def verify(db: str | None, receipts: tuple[str, ...], anchors_file: str | None,
           no_anchors: bool, named_keys: tuple[str, ...], trust_log_keys: bool,
           allow_unsigned: bool, against: str | None) -> None:
    """Check the whole log; exit 1 naming the first record that does not hold.

    Checks that every record is intact and linked, that the log ends where its signed head
    says, that every record is covered by a head signed with this installation's key, and
    that the log still holds every receipt in the anchors file (and each --receipt given).
    Where this machine has no installation key (an auditor's, a backup), name the key to trust
    with --key; without it, verify refuses (exit 2) rather than trust the log's own keys.

    \b
    Examples:
      $ smp sessions verify
      ok: 412 records, chain intact, signed by this installation's key ...; 9 receipts hold
      smp sessions verify --db /mnt/b/passlog.sqlite --anchors /mnt/b/passlog.anchors.jsonl
      smp sessions verify --db /mnt/b/passlog.sqlite --key 1a2b:3c4d:...:5c6d
      smp sessions verify --receipt "SMP-RECEIPT/1 S3f2a... #412 9c1e... Qm9v..."

    Without --db every log of the data directory is checked: the station's and each pen's
    own (written while another chair's run held the station's log).
    """
    paths = _existing_logs(db)
    for i, path in enumerate(paths):
        mine = receipts if len(paths) == 1 else tuple(
            r for r in receipts if _holds(path, r) or (i == 0 and not any(
                _holds(q, r) for q in paths)))
        if len(paths) > 1:
            click.echo(f"{path}:")
        _verify_log(str(path), mine, anchors_file if len(paths) == 1 else None, no_anchors,
                    named_keys, trust_log_keys, allow_unsigned, against)


def _holds(path: Path, receipt: str) -> bool:
    """Whether the log at `path` has the session a receipt names."""
    from smpdevice.errors import SmpError
    from smpdevice.records.signing import Receipt

    try:
        sid = Receipt.parse(_text_or_file(receipt)).session_id
        with PassLog.open(path, readonly=True) as log:
            log.session(sid)
    except SmpError:
        return False
    return True


def _verify_log(db: str | None, receipts: tuple[str, ...], anchors_file: str | None,
                no_anchors: bool, named_keys: tuple[str, ...], trust_log_keys: bool,
                allow_unsigned: bool, against: str | None) -> None:
    from smpdevice.records.keys import key_dir, load_public, parse_trusted_key
    from smpdevice.records.signing import Receipt, read_anchors

    named = [parse_trusted_key(k) for k in named_keys]
    if named and trust_log_keys:
        raise click.UsageError("--key and --trust-log-keys exclude each other: name the keys "
                               "to trust, or trust the log's own, not both")
    own = None if trust_log_keys or named else load_public()
    if own is None and not named and not trust_log_keys:
        # Trusting the log's own keys here would accept a log re-signed by anyone.
        click.secho("cannot check signatures: this machine has no installation key "
                    f"({key_dir()}) and no --key was given.", fg="red", err=True)
        click.echo("Run `smp keys show` on the installation that wrote the log (its "
                   "fingerprint is also in every session header) and pass --key FINGERPRINT; "
                   "or pass --trust-log-keys to check only that the log is consistent with the "
                   "keys it records itself (a log re-signed by someone else passes that).",
                   err=True)
        sys.exit(2)
    given = {k.fingerprint: k for k in named if not isinstance(k, str)}
    if own is not None:
        given[own.fingerprint] = own
    fingerprints_named = [k for k in named if isinstance(k, str)]

    kept = [(f"--receipt {i}", Receipt.parse(_text_or_file(r)))
            for i, r in enumerate(receipts, start=1)]
    anchors: bool | list = not no_anchors
    if anchors_file and not no_anchors:
        anchors = [(f"{anchors_file}, line {i}", r)
                   for i, r in enumerate(read_anchors(Path(anchors_file)), start=1)]
    with _open(db) as log:
        result = log.audit(trusted=given or None, trusted_fingerprints=fingerprints_named,
                           anchors=anchors, receipts=kept, allow_unsigned=allow_unsigned)
        central = None
        if against and result.ok:
            from smpdevice.records.central import compare

            central = compare(log, against)
            if central.problem:
                click.secho(f"differs from the central store: {central.problem}", fg="red")
                sys.exit(1)
    if result.problem is not None:
        click.secho(f"broken link: {result.problem}", fg="red")
        for fpr in result.unrecorded_keys:
            click.echo(f"The log does not record the public key of --key {fpr}, as a log "
                       "signed by that key does: its keys were replaced, or it comes from "
                       "another installation. To check anyway, pass that installation's public "
                       "key (`smp keys show`) instead of its fingerprint.")
        if "not a trusted key" in str(result.problem) and own is not None:
            click.echo("If this log comes from another installation, check it with --key "
                       "and that installation's fingerprint (`smp keys show` there).")
        sys.exit(1)
    fingerprints = ", ".join(result.key_fingerprints) or "none"
    whose = ("this installation's key" if own is not None
             else "the key(s) named by --key" if named
             else "the key(s) the log records (not checked against any installation)")
    click.secho(f"ok: {result.count} records, chain intact, signed by {whose} "
                f"{fingerprints} ({result.signatures_checked} signed heads); "
                f"{result.anchors_checked} receipt{'' if result.anchors_checked == 1 else 's'} "
                f"hold{'s' if result.anchors_checked == 1 else ''}; head {result.count} "
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
    for path in _existing_logs(db):  # the station's log and each pen's own
        with _open(str(path)) as log:
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
