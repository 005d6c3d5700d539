"""Reading records from read-only media (issue 11 item 10).

Root ignores permission bits, so a chmod'ed directory proves nothing when the tests run as root
(as in CI). Two real cases instead:
- a read-only bind mount in a private mount namespace (`unshare`): EROFS for everyone, root too;
- a chmod'ed directory read by an unprivileged user (`nobody`, when the tests run as root).
Both fail on the old code with "unable to open database file" (WAL needs its -shm index).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog, PassOutcome
from tests.run_once import run_dir, run_lock
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.records.test_passlog import begin, filled, open_session, stats

REPO = Path(__file__).resolve().parents[3]


def _calibration() -> Calibration:
    return Calibration.linear(pen_serial="SMP-RO", technician="ana", offset_mm=0.01, gain=1.02,
                              created_at=datetime.now(UTC),
                              **fit_points(0.01, 1.02))


def make_data(directory: Path, *, live_wal: bool = False) -> tuple[int, Path]:
    """A pass log and a calibration database in `directory`; returns (passes, log path).

    With `live_wal`, the log is a copy taken while its writer still ran: its last records are
    only in the -wal file beside it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    CalibrationStore(directory / "calibrations.sqlite").save(_calibration())
    db = directory / "passlog.sqlite"
    if not live_wal:
        filled(db)
        return 3, db
    source = directory.parent / "live"
    source.mkdir()
    with PassLog(source / "passlog.sqlite") as log:
        sid = open_session(log)
        for index in range(2):
            pid = begin(log, sid, index)
            log.end_pass(pid, outcome=PassOutcome.completed, stats=stats(),
                         ended_at=datetime.now(UTC))
        for name in ("passlog.sqlite", "passlog.sqlite-wal"):  # the backup, taken mid-session
            shutil.copyfile(source / name, directory / name)
    assert (directory / "passlog.sqlite-wal").stat().st_size > 0
    return 2, db


def smp_commands(db: Path) -> list[list[str]]:
    cal = str(db.with_name("calibrations.sqlite"))
    return [
        ["sessions", "verify", "--db", str(db)],
        ["sessions", "list", "--db", str(db)],
        ["sessions", "export", "--format", "jsonl", "--db", str(db)],
        ["sessions", "export", "--format", "csv", "--db", str(db)],
        ["calibrations", "list", "--db", cal],
    ]


def check_outputs(results: list[subprocess.CompletedProcess[str]], passes: int) -> None:
    verify, listing, jsonl, csv_out, calibrations = results
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    assert verify.stdout.startswith("ok: ")
    assert "1 sessions" in listing.stdout
    assert len([json.loads(line) for line in jsonl.stdout.splitlines()]) == passes
    assert len(csv_out.stdout.splitlines()) == passes + 1
    assert "SMP-RO" in calibrations.stdout


# The commands run in one Python process under the mount or the user (a process per command
# cost ~1 s of imports each, 20 times), both cases' (clean, WAL) in the same one, each command
# with its case's directory as the data directory: what is tested is the reading, by a process
# that cannot write, and each command's own exit status and output.
BATCH = """
import json, sys, traceback
from click.testing import CliRunner
from smpdevice.cli import main
out = []
for directory, args_list in json.loads(sys.argv[1]):
    for args in args_list:
        r = CliRunner().invoke(main, args, env={"SMP_DATA_DIR": directory})
        err = r.stderr
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            err += "".join(traceback.format_exception(r.exception))
        out.append([args, r.exit_code, r.stdout, err])
print(json.dumps(out))
"""

CASES = {False: "clean", True: "wal-left-by-a-live-writer"}  # live_wal: the case's name


def _batch(prefix: list[str], groups: list[tuple[Path, list[list[str]]]]
           ) -> subprocess.CompletedProcess[str]:
    """One process running each group's commands, its directory the data directory."""
    batch = [[str(directory), args_list] for directory, args_list in groups]
    return subprocess.run([*prefix, sys.executable, "-c", BATCH, json.dumps(batch)],
                          capture_output=True, text=True, env=_env(groups[0][0]), timeout=120)


def _results(batch: subprocess.CompletedProcess[str]) -> list[subprocess.CompletedProcess[str]]:
    assert batch.returncode == 0, batch.stdout + batch.stderr
    return [subprocess.CompletedProcess(args, status, out, err)
            for args, status, out, err in json.loads(batch.stdout)]


def _env(directory: Path) -> dict[str, str]:
    # The data directory is the read-only one too: nothing may be created there.
    return {**os.environ, "SMP_DATA_DIR": str(directory), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(REPO)}


def read_once(tmp_path_factory, name: str, read: Callable[[Path, list], list]) -> dict:
    """Both cases' data made in one directory per test run and read by one process (`read`,
    given that directory and the cases' (directory, commands) groups), by whichever test (in
    whichever pytest-xdist worker) comes first; the other test waits on the lock and checks
    its own case. Per case: its directory, passes, listing before the read, and results."""
    with run_lock(run_dir(tmp_path_factory), name) as root:
        done = root / f"{name}.json"
        if not done.is_file():  # not read yet, or a read that failed or was skipped
            work = root / name
            shutil.rmtree(work, ignore_errors=True)
            cases, groups = {}, []
            for live_wal, case in CASES.items():
                directory = work / case / "backup"
                passes, db = make_data(directory, live_wal=live_wal)
                groups.append((directory, smp_commands(db)))
                cases[case] = {"directory": str(directory), "passes": passes,
                               "before": sorted(p.name for p in directory.iterdir())}
            results = iter(read(work, groups))
            for case, (_, commands) in zip(cases.values(), groups, strict=True):
                case["results"] = [[r.args, r.returncode, r.stdout, r.stderr]
                                   for r in itertools.islice(results, len(commands))]
            assert next(results, None) is None
            done.write_text(json.dumps(cases))
    return json.loads(done.read_text())


def _case(tmp_path_factory, name: str, read, live_wal: bool
          ) -> tuple[Path, list[subprocess.CompletedProcess[str]], int, list[str]]:
    """This test's case: (its directory, its commands' results, its passes, its listing)."""
    case = read_once(tmp_path_factory, name, read)[CASES[live_wal]]
    results = [subprocess.CompletedProcess(args, status, out, err)
               for args, status, out, err in case["results"]]
    return Path(case["directory"]), results, case["passes"], case["before"]


# --- a read-only mount -------------------------------------------------------------------------


def _unshare_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) (util-linux) for a private read-only bind mount")
    prefix = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-rm"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here: {probe.stderr.strip()}")
    return prefix


def run_on_read_only_mount(_work: Path, groups: list[tuple[Path, list[list[str]]]]):
    """Run the groups' `smp` commands with each group's directory bind-mounted read-only over
    itself."""
    prefix = _unshare_prefix()
    script = ('while [ "$1" != -- ]; do d="$1"; shift; mount --bind -o ro "$d" "$d" || exit 97; '
              'touch "$d/probe" 2>/dev/null && exit 98; done; shift; exec "$@"')
    batch = _batch([*prefix, "sh", "-c", script, "sh", *(str(d) for d, _ in groups), "--"],
                   groups)
    if batch.returncode == 97:
        pytest.skip(f"cannot bind-mount read-only here: {batch.stderr.strip()}")
    assert batch.returncode != 98, "the bind mount is not read-only"
    return _results(batch)


@pytest.mark.parametrize("live_wal", [False, True], ids=["clean", "wal-left-by-a-live-writer"])
def test_reading_from_a_read_only_mount(tmp_path_factory, live_wal):
    directory, results, passes, before = _case(tmp_path_factory, "read-only-mount",
                                               run_on_read_only_mount, live_wal)
    check_outputs(results, passes)
    assert sorted(p.name for p in directory.iterdir()) == before


# --- a chmod'ed read-only directory -------------------------------------------------------------


def _without_root_overrides() -> list[str]:
    """As root, run without the capabilities that bypass permission bits (so a 0555 directory
    is read-only for it, as for anyone); as another user, nothing is needed."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root needs setpriv(1) (util-linux) to honour permission bits")
    drop = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, "--bounding-set", drop, "--inh-caps", drop]


def run_without_write_permission(_work: Path, groups: list[tuple[Path, list[list[str]]]]):
    """Run the groups' `smp` commands with each group's directory and files read-only (0555,
    0444); their modes are given back after."""
    prefix = _without_root_overrides()
    directories = [directory for directory, _ in groups]
    try:
        for directory in directories:
            for path in directory.iterdir():
                path.chmod(0o444)
            directory.chmod(0o555)
            probe = subprocess.run([*prefix, "sh", "-c", f'touch "{directory}/probe"'],
                                   capture_output=True, text=True)
            assert probe.returncode != 0, "the directory is still writable"
        return _results(_batch(prefix, groups))
    finally:
        for directory in directories:
            directory.chmod(0o755)


@pytest.mark.parametrize("live_wal", [False, True], ids=["clean", "wal-left-by-a-live-writer"])
def test_reading_a_read_only_directory(tmp_path_factory, live_wal):
    directory, results, passes, _ = _case(tmp_path_factory, "read-only-directory",
                                          run_without_write_permission, live_wal)
    check_outputs(results, passes)
    assert not (directory / "passlog.sqlite-shm").exists()


# --- the pieces, in process ---------------------------------------------------------------------


def test_a_read_only_calibration_store_creates_nothing(tmp_path):
    missing = tmp_path / "none.sqlite"
    store = CalibrationStore(missing, readonly=True)
    assert store.list() == [] and store.latest("SMP-RO") is None
    assert not missing.exists()
    with pytest.raises(CalibrationStoreError, match="opened read-only; nothing was saved"):
        store.save(_calibration())
    assert not missing.exists()
