"""A bad port URL is refused saying what is wrong with it (review 5): pyserial answered
`socket://127.0.0.1:99999` with "...: 'debug|info|warning|error'" (it formats its own message
twice), a missing port with "'<=' not supported between int and NoneType", and `loop://?x=1`
escaped as a KeyError traceback."""

from __future__ import annotations

import urllib.parse

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.errors import SmpError
from smpdevice.transport import TransportError, check_port, open_port

MISLEADING = ("debug|info|warning|error", "NoneType", "KeyError")


@pytest.mark.parametrize(("port", "says"), [
    ("socket://127.0.0.1:99999", "TCP port number '99999' is out of range: give a whole number "
                                 "1..65535"),
    ("socket://127.0.0.1:0", "TCP port number '0' is out of range"),
    ("socket://127.0.0.1:-1", "TCP port number '-1' is no whole number"),
    ("socket://127.0.0.1:abc", "TCP port number 'abc' is no whole number"),
    ("socket://127.0.0.1:\uff17\uff10\uff10\uff10", "is no whole number"),  # full-width 7000
    ("rfc2217://127.0.0.1:99999", "TCP port number '99999' is out of range"),
    ("socket://127.0.0.1", "the TCP port number is missing"),
    ("socket://[::1]", "the TCP port number is missing"),
    ("socket://:7000", "socket:// needs a host before :7000"),
    ("socket://host name:7000", "host 'host name' is no ASCII host name"),
    ("socket://\uff4cocalhost:7000", "is no ASCII host name"),  # resolved as localhost before
    ("socket://127.0.0.1:7000/path", "HOST:PORT only (no path, user or fragment)"),
    ("socket://127.0.0.1:7000?x=1", "socket:// has no option 'x'; known: logging"),
    ("socket://127.0.0.1:7000?logging=loud", "option logging='loud' is not one of debug"),
    ("rfc2217://127.0.0.1:7000?timeout=nan", "option timeout='nan' is no number of seconds"),
    ("loop://?x=1", "loop:// has no option 'x'"),
    ("loop://x", "loop:// takes no address"),
    ("SOCKET://127.0.0.1:7000", "URL scheme 'SOCKET' is not valid"),
    ("spy://socket://127.0.0.1:7000", "spy:// wraps a device path"),  # was "No such file"
    ("alt://loop://", "alt:// wraps a device path"),
    ("pensim://?faults=drop=0.1&faults=drop=0.5", "pensim option faults is given 2 times"),
    ("pensim://?lease=100&seed=1&lease=2000", "pensim option lease is given 2 times"),
    ("", "it is empty"),
    ("  ", "it is empty"),
    ("usb:", "usb: needs the pen's USB serial number"),
])
def test_a_bad_port_says_what_is_wrong(port, says):
    with pytest.raises(TransportError) as exc:
        open_port(port)
    message = str(exc.value)
    assert says in message, message
    assert not any(bad in message for bad in MISLEADING), message
    assert "smp ports" in message, message


@pytest.mark.parametrize("port", [5, None, b"socket://127.0.0.1:7000"])
def test_a_port_that_is_no_text_is_a_typed_error(port):
    with pytest.raises(TransportError, match=r"^port=.* is refused: a port is text"):
        open_port(port)


def test_good_urls_still_open_or_fail_only_at_connecting():
    open_port("loop://?logging=error").close()
    for port in ("socket://127.0.0.1:9", "socket://[::1]:9", "socket://localhost:9?logging=info"):
        assert check_port(port) == port
        with pytest.raises(TransportError, match="cannot open port"):  # nothing listens there
            open_port(port)


def test_smp_info_shows_the_reason_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["info", "--port", "socket://127.0.0.1:99999"])
    assert result.exit_code == 2, result.output
    assert "TCP port number '99999' is out of range" in result.output, result.output
    assert "Traceback" not in result.output and "debug|info" not in result.output


_host = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "", "h st", "a/b", "\u0661", "x:y"])
_number = st.one_of(st.integers(-5, 70000).map(str),
                    st.sampled_from(["", "07000", "1_0", "\uff17", "+5", " 5", "5 "]))
_query = st.sampled_from(["", "?logging=info", "?logging=x", "?a=1", "?&", "?logging"])


@given(st.one_of(
    st.builds("socket://{}:{}{}".format, _host, _number, _query),
    st.builds("rfc2217://{}:{}".format, _host, _number),
    st.text(max_size=30).map("socket://{}".format),
    st.text(max_size=30).map("loop://{}".format),
))
@settings(max_examples=400, deadline=None)
def test_check_port_passes_only_what_pyserial_parses_the_same_way(port):
    try:
        assert check_port(port) == port
    except TransportError as exc:
        assert str(exc).startswith(f"port {port!r}: "), str(exc)
        assert isinstance(exc, SmpError)
        return
    if port.startswith(("socket://", "rfc2217://")):
        parts = urllib.parse.urlsplit(port)
        assert parts.hostname and parts.port is not None and 1 <= parts.port <= 65535, port
        assert parts.path == "" and port.isascii(), port
