"""Verifying pass logs: the one implementation behind `smp sessions verify`, the service's
`sessions.verify` and the console's "Verify chain", so they cannot drift apart.

- whose keys to trust (`resolve_trust`): this installation's key, or keys named by an auditor,
  or (asked for explicitly) the keys the log records; with none of them it refuses
  (`NoTrustedKey`, exit 2) rather than trust the keys a log names itself: anyone can rewrite a
  log and re-sign it with a key of their own;
- each log checked whole (`verify_log`): chain, head, signatures, anchors, receipts, and the
  central store's copy (`--against`);
- the central store against the data directory (`missing_logs`): every log the central store
  holds under the trusted keys must still be here; a deleted log is what an audit must catch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError
from smpdevice.records.keys import PublicKey


class ConflictingTrust(SmpError):
    """Keys named (--key) and the log's own keys trusted (--trust-log-keys) at once: a usage
    error (exit 2)."""


class NoTrustedKey(SmpError):
    """No key to check signatures against: this machine has no installation key and none was
    named. Refused (exit 2) rather than trusting the keys the log records itself."""


@dataclass(frozen=True)
class Trust:
    """The keys a verification accepts."""

    keys: dict[str, PublicKey]  # fingerprint -> public key
    fingerprints: list[str]  # keys named by fingerprint alone (the log must record them)
    own: bool  # this installation's key is among them
    log_keys: bool  # the keys the log records (consistency only: not who signed it)

    @property
    def whose(self) -> str:
        if self.own:
            return "this installation's key"
        if self.keys or self.fingerprints:
            return "the key(s) named by --key"
        return "the key(s) the log records (not checked against any installation)"


def resolve_trust(named_keys: Sequence[str] = (), trust_log_keys: bool = False) -> Trust:
    """The keys to verify against: the `named_keys` (fingerprints or public keys), else the
    log's own keys when `trust_log_keys`, else this installation's key; NoTrustedKey when this
    machine has none."""
    from smpdevice.records.keys import key_dir, load_public, parse_trusted_key

    if named_keys and trust_log_keys:
        raise ConflictingTrust("--key and --trust-log-keys exclude each other: name the keys "
                               "to trust, or trust the log's own, not both")
    named = [parse_trusted_key(k) for k in named_keys]
    own = None if trust_log_keys or named else load_public()
    if own is None and not named and not trust_log_keys:
        raise NoTrustedKey(
            f"cannot check signatures: this machine has no installation key ({key_dir()}) and "
            "no key was named. Run `smp keys show` on the installation that wrote the log "
            "(its fingerprint is also in every session header) and verify with `smp sessions "
            "verify --key FINGERPRINT`; or `--trust-log-keys` to check only that the log is "
            "consistent with the keys it records itself (a log re-signed by someone else "
            "passes that)")
    keys = {k.fingerprint: k for k in named if not isinstance(k, str)}
    if own is not None:
        keys[own.fingerprint] = own
    return Trust(keys=keys, fingerprints=[k for k in named if isinstance(k, str)],
                 own=own is not None, log_keys=trust_log_keys)


@dataclass
class LogCheck:
    """One log's verification: `audit` (smpdevice.records.audit.Audit), and `central` (a
    smpdevice.records.central.Comparison) when compared with a central store."""

    path: Path
    log_id: str
    audit: Any
    central: Any = None
    missing: str | None = None  # the log is gone, its anchors file left (logset.missing_log)

    @property
    def problem(self) -> str | None:
        if self.missing is not None:
            return f"missing: {self.missing}"
        if self.audit.problem is not None:
            return f"broken link: {self.audit.problem}"
        if self.central is not None and self.central.problem:
            return f"differs from the central store: {self.central.problem}"
        return None


def verify_log(path: Path, trust: Trust, *, receipts: Sequence[tuple[str, Any]] = (),
               anchors: bool | Path = True, allow_unsigned: bool = False,
               against: str | None = None) -> LogCheck:
    """Check the log at `path` whole (read-only), and against the central store at `against`
    when it holds (a broken log is not compared: its first problem is the answer). A log that
    was deleted, its anchors file left, or that the `receipts` given name while nothing is at
    `path`, fails as missing (its records are gone); one that cannot be opened, or whose file
    is damaged (`check_storage`), raises PassLogError."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.audit import Audit
    from smpdevice.records.chain import BrokenLink
    from smpdevice.records.logset import missing_log, require_present

    gone = missing_log(Path(path)) or _receipts_without_log(Path(path), receipts)
    if gone is not None:
        return LogCheck(Path(path), "", Audit(problem=BrokenLink(0, gone)), missing=gone)
    require_present(Path(path))  # a link leading nowhere: named, not "no pass log"

    with PassLog.open(path, readonly=True) as log:
        log.check_storage()  # a damaged page the chain's scan never reads (an index): exit 3
        result = log.audit(trusted=trust.keys or None,
                           trusted_fingerprints=trust.fingerprints, anchors=anchors,
                           receipts=receipts, allow_unsigned=allow_unsigned)
        check = LogCheck(Path(path), log.log_id, result)
        if against and result.ok and log.log_id:  # no id yet (being created): never synced
            from smpdevice.records.central import compare

            check.central = compare(log, against)
    return check


def _receipts_without_log(path: Path, receipts: Sequence[tuple[str, Any]]) -> str | None:
    """Why the receipts given fail when nothing is at `path`: each names a session that was
    recorded (its signature cannot be checked without the log's id), so its log is gone
    (deleted with its anchors file, a data directory restored empty), never "a fresh
    station". None when something is there or none given."""
    import os

    if not receipts or os.path.lexists(path):
        return None
    named = ", ".join(f"session {r.session_id} (record {r.seq}, {source})"
                      for source, r in receipts[:3])
    return (f"no pass log at {path}, though the receipt{'s' if len(receipts) > 1 else ''} "
            f"given name{'' if len(receipts) > 1 else 's'} {named}{' ...' * (len(receipts) > 3)}"
            ": its log was deleted or moved (or another file was meant); restore it (from a "
            "backup) or give its path with --db")


def copies(checks: Sequence[LogCheck]) -> list[str]:
    """A problem for each log among `checks` that holds the same log as another (the readers'
    rule, `logcopies.copies`: the same log id, or first record for a log without one): two files
    of one data directory holding one log, an older copy (a backup), the same, or each written
    after the copy (review 18)."""
    from smpdevice.records.logcopies import copy_problems

    return [f"copied: {c}" for c in copy_problems([c.path for c in checks if not c.missing])]


@dataclass
class Verification:
    """Every log of a data directory checked (`verify_all`)."""

    logs: list[LogCheck]

    @property
    def problem(self) -> str | None:
        return next((c.problem for c in self.logs if c.problem), None) or next(
            iter(copies(self.logs)), None)


def missing_logs(checks: Sequence[LogCheck], trust: Trust, against: str) -> list[str]:
    """A problem for each log the central store at `against` holds under the trusted keys
    (or, trusting the logs' own keys, under theirs) that none of `checks` is."""
    from smpdevice.records.central import installation_logs
    from smpdevice.records.central_compare import unclaimed_logs

    fingerprints = set(trust.keys) | set(trust.fingerprints)
    if trust.log_keys:
        fingerprints |= {f for c in checks for f in c.audit.key_fingerprints}
    here = {c.log_id for c in checks}
    return [f"log {log_id} (up to record {head}) is in the central store under this "
            f"installation's key but not here: a log of this data directory was removed or "
            "moved; restore it (from a backup), or find where it went (a second data "
            "directory under the same key: check each log there with --db)"
            for log_id, head in installation_logs(against, sorted(fingerprints))
            if log_id not in here] + unclaimed_logs(against, sorted(fingerprints), here)


def verify_all(paths: Sequence[Path], trust: Trust, *,
               station: Path | None = None) -> Verification:
    """Every log in `paths` checked as `verify_log` does (anchors beside each): the service's
    `sessions.verify`. (`smp sessions verify` checks log by log, with the receipts, anchors
    file and central store it is given, and `missing_logs` for the whole directory.) A log of
    their directory (or the `station` log's) that was deleted, its anchors file left, is
    checked too: as missing."""
    from smpdevice.records.logset import deleted_beside

    beside = station if station is not None else (Path(paths[0]) if paths else None)
    gone = [p for p in deleted_beside(beside) if p not in paths] if beside else []
    return Verification([verify_log(p, trust) for p in [*paths, *gone]])
