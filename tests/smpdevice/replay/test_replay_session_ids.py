"""`smp replay SESSION`: what SESSION may be. An empty or blank id is a usage error (an empty
prefix is a prefix of every id); a prefix of several sessions names them; an id that can only
be a typing slip (not letters and digits) is refused as one. Exit 2 and one line each, never
a traceback."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from tests.smpdevice.replay.conftest import record_session, short_profile

pytestmark = pytest.mark.virtual_time


def smp(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def two(pen, passlog):
    """Two recorded sessions in one log: every id starts with `S`."""
    ids = [record_session(pen, passlog, short_profile(passes=1)).session_id for _ in range(2)]
    return passlog, ids


@pytest.mark.parametrize("blank", ["", " ", "\t", "  \n"])
def test_an_empty_or_blank_session_is_a_usage_error(pen, passlog, blank):
    record_session(pen, passlog, short_profile(passes=1))  # the only session: '' prefixes it
    for extra in ([], ["--into-sim"]):
        result = smp("replay", blank, *extra, "--db", str(passlog.path))
        assert result.exit_code == 2, result.output
        assert "Invalid value for SESSION" in result.output and "is empty or blank" in result.output
        assert "match" not in result.output


def test_a_prefix_of_several_sessions_names_them(two):
    passlog, ids = two
    common = "S"
    result = smp("replay", common, "--db", str(passlog.path))
    assert result.exit_code == 2, result.output
    assert "matches 2 sessions" in result.output and "give more of the id" in result.output
    assert all(sid in result.output for sid in ids), result.output


def test_a_unique_prefix_and_last_still_work(two):
    passlog, ids = two
    unique = next(sid[:n] for n in range(2, 18) for sid in ids
                  if sum(other.startswith(sid[:n]) for other in ids) == 1)
    result = smp("replay", unique, "--db", str(passlog.path))
    assert result.exit_code == 0 and "match: session S" in result.output, result.output
    result = smp("replay", "last", "--db", str(passlog.path))
    assert result.exit_code == 0 and f"match: session {ids[1]}" in result.output


@pytest.mark.parametrize("bad", ["../S1", "S1 ", "S%", "S_", "S\x00", "Sé"])
def test_an_id_that_is_no_id_is_a_usage_error(two, bad):
    passlog, _ = two
    result = smp("replay", bad, "--db", str(passlog.path))
    assert result.exit_code == 2, result.output
    assert "is not a session id" in result.output


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=30))
def test_any_text_either_names_one_session_or_exits_2(two, text):
    """Whatever is typed: a replay of exactly one session, or exit 2 (never a guess)."""
    passlog, ids = two
    result = smp("replay", text, "--db", str(passlog.path))
    hits = [sid for sid in ids if text and text.isascii() and text.isalnum()
            and sid.startswith(text)]
    if text == "last" or len(hits) == 1:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2, (text, result.output)


def test_a_prefix_matching_in_two_logs_is_refused_naming_both(sim, tmp_path, monkeypatch):
    """A two-chair station keeps a log per pen: a prefix is looked up in all of them (the
    first log's match was taken before, whatever the others held)."""
    from smpdevice.control import PenController
    from smpdevice.passlog import PassLog
    from tests.smpdevice.conftest import true_calibration

    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    ids = []
    for name in ("passlog.sqlite", "passlog-SMP2.sqlite"):
        pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                    clock=sim.clock)
        try:
            with PassLog.open(tmp_path / name) as log:
                ids.append(record_session(pen, log, short_profile(passes=1)).session_id)
        finally:
            pen.close()
    result = smp("replay", "S")
    assert result.exit_code == 2, result.output
    assert "matches 2 sessions" in result.output
    assert all(sid in result.output for sid in ids), result.output
    result = smp("replay", ids[1])  # the second log's session, by its whole id
    assert result.exit_code == 0 and f"match: session {ids[1]}" in result.output, result.output


@pytest.mark.parametrize("extra", [[], ["--into-sim"]])
def test_a_missing_db_file_is_named(tmp_path, monkeypatch, extra):
    """`--db FILE` that does not exist: the message names FILE (review6 R08), not the data
    directory the user did not ask about."""
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    missing = tmp_path / "missing.sqlite"
    result = smp("replay", "last", "--db", str(missing), *extra)
    assert result.exit_code == 2, result.output
    assert f"no pass log at {missing}" in result.output and "--db" in result.output
    assert "in the data directory" not in result.output and not missing.exists()
