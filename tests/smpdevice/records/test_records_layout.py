"""The records package's shape (issue 13 item 4) and its pure chain, without any storage."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import smpdevice.passlog as shim
from smpdevice.records import chain, model, sqlite
from smpdevice.records.chain import GENESIS_HASH, ChainRecord, record_hash, verify_chain

IO_MODULES = {"sqlite3", "os", "io", "pathlib", "shutil", "tempfile", "socket", "subprocess"}


def test_the_record_and_chain_modules_do_no_io():
    for module in (model, chain):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert not imported & IO_MODULES, (module.__name__, imported & IO_MODULES)
        assert "open(" not in Path(module.__file__).read_text()


def test_the_old_module_re_exports_the_same_objects():
    assert shim.PassLog is sqlite.PassLog
    assert shim.PassStats is model.PassStats and shim.record_hash is chain.record_hash
    for name in shim.__all__:
        assert getattr(shim, name) is not None


def make_chain(bodies: list[str]) -> list[ChainRecord]:
    records, prev = [], GENESIS_HASH
    for seq, body in enumerate(bodies, start=1):
        digest = record_hash(seq, "pass_end", "S1", f"P{seq}", "t", body, prev)
        records.append(ChainRecord(seq, "pass_end", "S1", f"P{seq}", "t", body, prev, digest))
        prev = digest
    return records


@settings(deadline=None)  # no timing assertions on a loaded CI machine
@given(st.lists(st.text(max_size=20), min_size=1, max_size=8), st.data())
def test_any_edit_of_any_record_is_named(bodies, data):
    records = make_chain(bodies)
    walk = verify_chain(records)
    assert walk.broken is None and walk.count == len(records)
    victim = data.draw(st.integers(0, len(records) - 1))
    edited = records[victim].body + data.draw(st.text(min_size=1, max_size=3))
    records[victim] = ChainRecord(**{**records[victim].__dict__, "body": edited})
    broken = verify_chain(records).broken
    assert broken is not None and broken.record_id == victim + 1 and "altered" in broken.problem


def test_a_walk_can_continue_from_a_verified_point():
    records = make_chain(["a", "b", "c", "d"])
    first = verify_chain(records[:2])
    rest = verify_chain(records[2:], start_seq=first.count + 1, start_hash=first.head_hash)
    assert rest.broken is None and rest.count == 4
    assert verify_chain(records[3:], start_seq=3, start_hash=first.head_hash).broken is not None


_TEXT = st.text(max_size=12)  # any Unicode: emoji, combining marks, NUL, no surrogates


@given(st.integers(1, 10**12), st.sampled_from(chain.RECORD_KINDS), _TEXT,
       st.none() | _TEXT, _TEXT, _TEXT, _TEXT)
def test_the_fast_walk_hashes_exactly_what_record_hash_hashes(seq, kind, sid, pid, at, body,
                                                             prev):
    """`verify_rows` builds record_hash's payload inline: the same hash for any text, and a
    hash made any other way is refused."""
    digest = record_hash(seq, kind, sid, pid, at, body, prev)
    row = (seq, kind, sid, pid, at, body, prev, digest)
    walk = chain.verify_rows([row], start_seq=seq, start_hash=prev)
    assert walk.broken is None and walk.head_hash == digest
    shifted = (seq, kind, sid + ",", pid, at, body[1:], prev, digest)  # text moved across
    assert chain.verify_rows([shifted], start_seq=seq, start_hash=prev).broken is not None


@settings(deadline=None, max_examples=20)  # each example writes a real log
@given(st.text(min_size=1, max_size=12))
def test_the_sqlite_walk_verifies_any_text_it_stored(tmp_path_factory, name):
    """Rows read back from SQLite (text decoded by it) walk clean for any text."""
    import sqlite3

    from smpdevice.records import sqlite_signing
    from tests.smpdevice.records.test_passlog import open_session

    db = tmp_path_factory.mktemp("payload") / "p.sqlite"
    with sqlite.PassLog(db) as log:
        open_session(log, name)
    conn = sqlite3.connect(db)
    walk = sqlite_signing._serial(conn, ())
    conn.close()
    assert walk.broken is None and walk.count == 1


def test_text_that_is_not_utf8_is_named_as_altered_not_an_error(tmp_path):
    """Only an edited file holds bytes that are not UTF-8: verify names that record."""
    import sqlite3

    from smpdevice.records import sqlite_signing
    from tests.smpdevice.records.test_passlog import open_session

    db = tmp_path / "p.sqlite"
    with sqlite.PassLog(db) as log:
        for name in ("a", "b", "c"):
            open_session(log, name)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE records SET body = CAST(X'7B22FF227D' AS TEXT) WHERE seq = 2")
    conn.commit()
    walk = sqlite_signing._serial(conn, ())
    conn.close()
    assert walk.count == 1 and walk.broken is not None
    assert walk.broken.record_id == 2 and "was altered" in walk.broken.problem
