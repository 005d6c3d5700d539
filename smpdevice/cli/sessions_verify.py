"""`smp sessions verify`: check the whole log, its signed heads, anchors and receipts, and
optionally against a clinic chain's central store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from smpdevice.cli.sessions_common import (
    db_option,
    existing_logs,
    nothing_recorded,
    nothing_yet,
)
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.records.files import NotAFileError
from smpdevice.records.logset import deleted_beside, missing_log, unreachable
from smpdevice.records.model import PassLogError

# The pass log's and the verifier's modules are imported when a log is verified: `smp sessions`
# registers this command for every one of its subcommands (issue 13: start-up).
if TYPE_CHECKING:
    from smpdevice.records.signing import Receipt
    from smpdevice.records.verifying import LogCheck, Trust


@click.command()
@db_option
@click.option("--receipt", "receipts", multiple=True, metavar="TEXT|FILE",
              help="Also check a receipt someone kept (its text, or a file holding it, e.g. "
                   "a scanned aftercare sheet's text). Repeatable.")
@click.option("--anchors", "anchors_file", type=click.Path(dir_okay=False, exists=True),
              help="The anchors file to check against (default: the one beside each log). "
                   "It belongs to one log: with several in the data directory, give that log "
                   "with --db.")
@click.option("--no-anchors", is_flag=True,
              help="Do not check an anchors file (e.g. a backup copied without it); not "
                   "with --anchors.")
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
              help="Accept a log written before heads were signed (checks the plain chain; "
                   "said NOT SIGNED). A log once signed (its records name a key) is refused.")
@click.option("--against", metavar="postgresql://...",
              help="Also compare with a clinic chain's central store: each log with its "
                   "central copy and, without --db, every log the store holds for the "
                   "trusted key must still be in the data directory.")
def verify(db: str | None, receipts: tuple[str, ...], anchors_file: str | None,
           no_anchors: bool, named_keys: tuple[str, ...], trust_log_keys: bool,
           allow_unsigned: bool, against: str | None) -> None:
    """Check the whole log; exit 1 naming the first record that does not hold (of each log).

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
    own (written while another chair's run held the station's log), each named with its
    line, also after a broken one. A log deleted while its anchors file is left is named
    `missing` (exit 1), as is one a --receipt names that is not there; one holding the same
    log as another (a copy: the same log id) `copied` (exit 1); one that cannot be
    opened, or whose file SQLite finds damaged (`PRAGMA quick_check`), `not checked` (exit 3).
    Safe while a pen runs: the log is read as one commit left it.
    """
    if anchors_file and no_anchors:  # one of them would be dropped unsaid (review 15, F7)
        raise click.UsageError(f"--anchors {anchors_file} and --no-anchors exclude each other: "
                               "check against that anchors file, or without any, not both")
    if against is not None and not against.strip():  # an empty URL checked nothing
        raise click.BadParameter("give the central store's URL (postgresql://...), or leave "
                                 "--against out", param_hint="--against")
    # A new station (no log, no anchors file left): nothing to verify, no error. A receipt
    # kept or an anchors file given names sessions: a missing log is then still reported;
    # --against first asks the central store whether logs were deleted here.
    fresh = nothing_recorded(db)
    if fresh is not None and not receipts and not anchors_file and not against:
        _nothing_to_verify(fresh)
    from smpdevice.records.sqlite_file import refuse_foreign
    from smpdevice.records.verifying import ConflictingTrust, NoTrustedKey, resolve_trust

    try:
        trust = resolve_trust(named_keys, trust_log_keys)
    except ConflictingTrust as exc:
        raise click.UsageError(str(exc)) from None
    except NoTrustedKey as exc:  # trusting the log's own keys would accept a forged log
        click.secho(str(exc), fg="red", err=True)
        sys.exit(2)
    paths = existing_logs(db)
    if db is None:  # a log deleted while its anchors file is left: checked, as missing
        from smpdevice.paths import db_path

        paths += [p for p in deleted_beside(db_path()) if p not in paths]
    if anchors_file and len(paths) > 1:  # which log's? never drop it silently (review 8b, R04)
        raise click.UsageError(
            f"--anchors {anchors_file}: the data directory holds {len(paths)} logs "
            f"({', '.join(p.name for p in paths)}); an anchors file belongs to one of them: "
            "give that log with --db (e.g. --db "
            f"{paths[0]} --anchors {anchors_file})")
    if against and db is None and not any(p.exists() for p in paths):
        _no_local_log(paths[0], trust, against, receipts)  # deleted? the central store knows
    if fresh is not None and not receipts and not anchors_file:
        _nothing_to_verify(fresh)
    checks, unreadable, broken = [], False, False
    for i, path in enumerate(paths):
        mine = receipts if len(paths) == 1 else tuple(
            r for r in receipts if _holds(path, r) or (i == 0 and not any(
                _holds(q, r) for q in paths)))
        if len(paths) > 1:
            click.echo(f"{path}:")
        try:
            if db is None and not unreachable(path) and not missing_log(path):
                refuse_foreign(path)  # a stray file of the data directory: named as found
            check = _verify_log(path, mine, anchors_file, no_anchors, trust, allow_unsigned,
                                against)
        except (PassLogError, NotAFileError) as exc:
            if db is not None or len(paths) == 1:
                raise
            click.secho(f"not checked: {exc}", fg="red")  # the other logs still are
            unreadable = True
            continue
        checks.append(check)
        broken = broken or check.problem is not None  # every log is checked all the same
    from smpdevice.records.verifying import copies

    for problem in copies(checks):  # one log in two files: every reader would count it twice
        click.secho(problem, fg="red")
        broken = True
    if against and db is None:  # the whole data directory: is every synced log still here?
        from smpdevice.records.verifying import missing_logs

        problems = missing_logs(checks, trust, against)
        _report_missing(problems, exit_now=False)
        broken = broken or bool(problems)
        if not problems:
            click.secho("ok: every log the central store holds for these keys is here",
                        fg="green")
    if broken:
        sys.exit(1)
    if unreadable:
        sys.exit(ExitCode.RECORD_ERROR)  # a log could not be read: never a silent ok


def _nothing_to_verify(station: Path) -> None:
    click.echo(f"nothing to verify: {nothing_yet(station)}")
    sys.exit(0)


def _no_local_log(station: Path, trust: Trust, against: str,
                  receipts: tuple[str, ...]) -> None:
    """No log at all here, with --against: the logs the central store holds for these keys
    were deleted (exit 1, naming each, and each --receipt given as `missing`, as without
    --against); none there either: a fresh station (falls through to "no pass log")."""
    from smpdevice.records.verifying import missing_logs

    problems = missing_logs([], trust, against)
    _report_missing(problems, header=f"no pass log at {station}", exit_now=False)
    if problems:
        if receipts:  # the log they name is gone: `missing`, naming each receipt
            _verify_log(station, receipts, None, True, trust, False, None)
        sys.exit(1)


def _report_missing(problems: list[str], header: str | None = None, *,
                    exit_now: bool = True) -> None:
    """Each log the central store holds but this data directory lacks, then exit 1 (unless
    not `exit_now`); nothing when none is missing."""
    if not problems:
        return
    if header is not None:
        click.secho(header, fg="red")
    for problem in problems:
        click.secho(f"differs from the central store: {problem}", fg="red")
    if exit_now:
        sys.exit(1)


def _holds(path: Path, receipt: str) -> bool:
    """Whether the log at `path` has the session a receipt names."""
    from smpdevice.records.sqlite import PassLog

    try:
        sid = _receipt_of(receipt).session_id
        with PassLog.open(path, readonly=True) as log:
            log.session(sid)
    except SmpError:
        return False
    return True


def _verify_log(path: Path, receipts: tuple[str, ...], anchors_file: str | None,
                no_anchors: bool, trust: Trust, allow_unsigned: bool,
                against: str | None) -> LogCheck:
    from smpdevice.records.verifying import verify_log

    kept = [(f"--receipt {i}", _receipt_of(r))
            for i, r in enumerate(receipts, start=1)]
    anchors: bool | Path = not no_anchors
    if anchors_file and not no_anchors:
        anchors = Path(anchors_file)  # read whole: it must hold every signed close's receipt
    check = verify_log(path, trust, receipts=kept, anchors=anchors,
                       allow_unsigned=allow_unsigned, against=against)
    result, central = check.audit, check.central
    if check.missing is not None:
        click.secho(f"missing: {check.missing}", fg="red")
        return check
    if result.problem is None and central is not None and central.problem:
        click.secho(f"differs from the central store: {central.problem}", fg="red")
        return check
    if result.problem is not None:
        click.secho(f"broken link: {result.problem}", fg="red")
        for fpr in result.unrecorded_keys:
            click.echo(f"The log does not record the public key of --key {fpr}, as a log "
                       "signed by that key does: its keys were replaced, or it comes from "
                       "another installation. To check anyway, pass that installation's public "
                       "key (`smp keys show`) instead of its fingerprint.")
        if "not a trusted key" in str(result.problem) and trust.own:
            click.echo("If this log comes from another installation, check it with --key "
                       "and that installation's fingerprint (`smp keys show` there).")
        return check
    fingerprints = ", ".join(result.key_fingerprints) or "none"
    signer = (f"signed by {trust.whose} {fingerprints} ({result.signatures_checked} signed "
              "heads)" if result.signed else "NOT SIGNED (written before heads were signed; "
              "accepted with --allow-unsigned: anyone could have rewritten it)"
              + ("" if result.has_head else "; schema 1: no chain head, so records removed "
                 "from its end cannot be seen"))
    click.secho(f"ok: {result.count} records, chain intact, {signer}; "
                f"{result.anchors_checked} receipt{'' if result.anchors_checked == 1 else 's'} "
                f"hold{'s' if result.anchors_checked == 1 else ''}; head {result.count} "
                f"{result.head_hash}", fg="green")
    if result.pending_close is not None:
        click.echo(f"being written: the receipt of the session close at record "
                   f"{result.pending_close}, the last one, is still being added to the anchors "
                   "file by the writer holding it; the next verify checks it")
    if against and not check.log_id:
        click.echo("not compared with the central store: this log has no log id yet (it is "
                   "being created); it is synced after its first session")
    if central is not None:
        click.secho(f"ok: the central store holds this log up to record "
                    f"{central.central_count}, identical to the local records", fg="green")
    return check


def _receipt_of(value: str) -> Receipt:
    """The receipt --receipt gives: its text, or the path of a file holding it. A file is named
    in the error, never echoed: one that is no text (a photo of the sheet, say) is said so."""
    from smpdevice.records.signing import Receipt, ReceiptError

    path = Path(value)
    if not (len(value) < 4096 and "SMP-RECEIPT/" not in value and path.is_file()):
        return Receipt.parse(value)
    with path.open("rb") as handle:  # at most 64 KiB of a sheet's text is read
        data = handle.read(65536)
    codec = _bom_codec(data)  # a text saved as "Unicode" (UTF-16, Notepad) says so first
    try:
        return Receipt.parse(data.decode(codec, errors="replace"))
    except ReceiptError:
        pass
    try:  # strict: is it text at all? (a character cut by the 64 KiB limit may be)
        binary = "\0" in data[:-4].decode(codec)
    except UnicodeDecodeError:
        binary = True
    if binary and codec == "utf-8" and _utf16_unmarked(data):
        raise ReceiptError(f"--receipt {value} looks like UTF-16 text with no byte-order mark "
                           "(every other byte 0): save it as UTF-8 or with its mark, or give "
                           "the receipt's text, as printed on the aftercare sheet")
    if binary:
        raise ReceiptError(f"--receipt {value} is not a text file (it holds binary data: a "
                           "photo or a PDF, say): give the receipt's text, as printed on the "
                           "aftercare sheet, or a text file holding it")
    raise ReceiptError(f"no receipt found in the file {value}: a receipt reads 'SMP-RECEIPT/1 "
                       "S<16 hex> #<record> <64 hex> <86-character signature>', as printed on "
                       "the aftercare sheet")


def _bom_codec(data: bytes) -> str:
    """The codec a text file's byte order mark names (UTF-32 before UTF-16: its mark starts
    alike); UTF-8 without one."""
    import codecs

    marks = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
             (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
             (codecs.BOM_UTF16_BE, "utf-16"))
    return next((codec for mark, codec in marks if data.startswith(mark)), "utf-8")


def _utf16_unmarked(data: bytes) -> bool:
    """Text saved as UTF-16 without its mark: one byte of nearly every pair is 0 (ASCII)."""
    pairs = len(data) // 2
    return pairs >= 8 and max(data[0:2 * pairs:2].count(0), data[1:2 * pairs:2].count(0)) >= (
        0.9 * pairs)
