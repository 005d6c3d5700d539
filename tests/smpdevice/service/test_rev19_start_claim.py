"""Rev 19: `claim_start` (`smp demo --web`, before its pen is calibrated) and `build` (`smp
serve`) make a start's checks in one place (runner._claim): the same refusals, in the same
order, each with nothing held after it. Two faults at once show the order; the lock is free
again after every refusal (taken here once more)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from smpdevice.errors import SmpError
from smpdevice.service.runner import ServiceOptions, build, claim_start, take_serve_lock


def _damage_tokens(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tokens = directory / "service.tokens.json"
    tokens.write_text("{damaged")
    tokens.chmod(0o600)


def _refusal(start, options: ServiceOptions) -> str:
    with pytest.raises(SmpError) as caught:
        start(options)
    return str(caught.value)


@pytest.mark.parametrize("fault", ["listen_and_tokens", "tokens_and_lock", "lock_and_port",
                                   "remote_and_port", "port"])
def test_claim_start_and_build_refuse_alike_and_hold_nothing(tmp_path, fault):
    said: dict[str, str] = {}
    for name, start in (("claim", claim_start), ("build", build)):
        directory = tmp_path / name / "data"
        directory.mkdir(mode=0o700, parents=True)
        listen = "127.0.0.1:0"
        held = None
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            if fault == "listen_and_tokens":
                listen, _ = "no-port-here", _damage_tokens(directory)
            elif fault == "tokens_and_lock":
                _damage_tokens(directory)
                held = take_serve_lock(directory)
            elif fault == "lock_and_port":
                held, listen = take_serve_lock(directory), f"127.0.0.1:{port}"
            elif fault == "remote_and_port":
                listen = f"0.0.0.0:{port}"
            else:
                listen = f"127.0.0.1:{port}"
            try:
                text = _refusal(start, ServiceOptions(port="/dev/ttyUSB-never-opened",
                                                      listen=listen, data_dir=directory))
            finally:
                if held is not None:
                    held.close()
        said[name] = text.replace(str(directory), "DIR").replace(f":{port}", ":PORT")
        take_serve_lock(directory).close()  # nothing held after the refusal
    assert said["claim"] == said["build"], said
    first = {"listen_and_tokens": "listen", "tokens_and_lock": "token file",
             "lock_and_port": "stop it first", "remote_and_port": "allow-remote",
             "port": "Pick another --listen port"}[fault]
    assert first in said["claim"], said
