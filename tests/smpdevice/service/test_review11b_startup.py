"""Review 11 (revb) B3, B4, B5: a start that cannot succeed is refused before the pen is
opened, with one line saying what to do; one that fails after it closes the pen."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from collections.abc import Iterator

import pytest

from smpdevice.errors import SmpError
from smpdevice.service.auth import AuthError, read_tokens
from smpdevice.service.runner import ServiceHandle, ServiceOptions, build, run_server
from smpdevice.service.server import SUN_PATH_MAX, ServeError
from tests.smpdevice.conftest import true_calibration


@contextlib.contextmanager
def silent_pen() -> Iterator[tuple[str, socket.socket]]:
    """A `socket://` "pen" that nobody answers: whether anything connected to it tells whether
    a start opened the pen."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"socket://127.0.0.1:{listener.getsockname()[1]}", listener
    finally:
        listener.close()


def was_connected(listener: socket.socket) -> bool:
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def test_a_second_service_on_the_same_data_dir_never_opens_its_pen(sim, data_dir):
    first = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                           calibration=true_calibration(sim))
    with ServiceHandle(first), silent_pen() as (url, listener):
        second = ServiceOptions(port=url, listen="127.0.0.1:0", data_dir=data_dir)
        with pytest.raises(SmpError, match="another `smp serve` already (listens|runs)"):
            build(second)
        assert not was_connected(listener), "the second service opened a pen"


def test_a_listen_port_in_use_is_refused_before_the_pen_opens(data_dir):
    busy = socket.create_server(("127.0.0.1", 0))
    with busy, silent_pen() as (url, listener):
        port = busy.getsockname()[1]
        options = ServiceOptions(port=url, listen=f"127.0.0.1:{port}", data_dir=data_dir,
                                 unix_socket=False)
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}.*another"):
            build(options)
        assert not was_connected(listener)


def test_a_start_that_fails_after_the_pen_opened_closes_the_pen(sim, data_dir):
    """The port is taken between the check and the listener (a race): the start is refused the
    same way, and the pen is closed by the service (stopped, disarmed), not left open."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    options = ServiceOptions(port=sim.url, listen=f"127.0.0.1:{port}", data_dir=data_dir,
                             calibration=true_calibration(sim), unix_socket=False)
    server = build(options)
    with (socket.create_server(("127.0.0.1", port)),  # taken after the check
          pytest.raises(ServeError, match="cannot listen on")):
        asyncio.run(run_server(server))
    assert server.service.apen.closed


def test_a_data_dir_too_long_for_a_unix_socket_names_the_socket_and_the_way_out(tmp_path):
    data_dir = tmp_path / ("d" * (SUN_PATH_MAX + 1))
    with silent_pen() as (url, listener):
        with pytest.raises(ServeError) as refused:
            build(ServiceOptions(port=url, listen="127.0.0.1:0", data_dir=data_dir))
        assert not was_connected(listener)
    message = str(refused.value)
    assert str(data_dir / "service.sock") in message
    assert f"over the {SUN_PATH_MAX}" in message and "--no-socket" in message
    assert "Free space" not in message


def test_a_data_dir_too_long_for_a_socket_serves_with_no_socket(sim, tmp_path):
    data_dir = tmp_path / ("d" * (SUN_PATH_MAX + 1))
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             calibration=true_calibration(sim), unix_socket=False)
    with ServiceHandle(options) as handle:
        assert handle.socket_path is None and handle.url.startswith("ws://127.0.0.1:")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_token_file_that_is_not_a_file_is_not_told_to_chmod(tmp_path, kind):
    import os

    path = tmp_path / "service.tokens.json"
    if kind == "directory":
        path.mkdir(mode=0o755)
    else:
        os.mkfifo(path, 0o644)
    with pytest.raises(AuthError) as refused:
        read_tokens(path)
    message = str(refused.value)
    assert "chmod" not in message, message
    assert ("is a directory, not a file" if kind == "directory" else
            "is not a regular file") in message
    assert "move it away" in message
