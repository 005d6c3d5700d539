"""Review 18 (a fresh-clone CI run): a Ctrl-C landing just after `SyncServiceClient.next_event`
had scheduled its wait on the client's loop, before the wait could be cancelled, left that wait
running: it took the next event (there, the session.result `smp run --service` waited for) and
nobody read it; the run waited 30 s and exited 130 instead of the recorded outcome's status.
Now an event a left wait takes is kept for the next one.

The Ctrl-C is made exact by raising KeyboardInterrupt as asyncio hands back the scheduled wait
(pytest-mock, on the standard library's call); the service, the client and the event are real."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smpdevice.service import client as client_module
from smpdevice.service.client import SyncServiceClient
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration


def test_an_event_taken_by_a_wait_a_ctrl_c_left_running_is_the_next_waits(vsim, data_dir,
                                                                            mocker):
    schedule = asyncio.run_coroutine_threadsafe
    cut = []

    def scheduled_then_ctrl_c(coro, loop):
        future = schedule(coro, loop)
        if not cut:  # the first wait only: the key pressed as it was handed back
            cut.append(future)
            raise KeyboardInterrupt
        return future

    options = ServiceOptions(port=vsim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             calibration=true_calibration(vsim))
    with ServiceHandle(options) as handle, \
            SyncServiceClient.connect(handle.url, role="viewer", data_dir=Path(data_dir)) as svc, \
            SyncServiceClient.connect(handle.url, role="operator",
                                      data_dir=Path(data_dir)) as other:
        mocker.patch.object(client_module.asyncio, "run_coroutine_threadsafe",
                            scheduled_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            svc.next_event({"pen.state"}, timeout_s=10)
        mocker.stopall()
        assert other.estop()["confirmed"]  # a pen.state (-> estop), taken by the left wait
        method, params = svc.next_event({"pen.state"}, timeout_s=10)
    assert cut  # the Ctrl-C came as the wait was handed back
    assert (method, params["new"]) == ("pen.state", "estop"), params
