"""Two holders of a client's skin changing at once with the pen disconnected: neither change
is lost. The holders were read, changed and swapped outside any lock on that path, so a
change made in between (another session closing, `set_client_skin` by hand) was overwritten.
On the simulator's virtual clock."""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import State

pytestmark = pytest.mark.virtual_time


def test_two_holders_changing_at_once_while_disconnected_keep_both(pen):
    pen.close()
    assert pen.state is State.DISCONNECTED
    real_skins_with, other = pen._skins_with, []

    def skins_with_then_another_holder(holder, epidermis_mm):
        skins = real_skins_with(holder, epidermis_mm)
        if holder == "session a" and not other:  # between a's read and a's swap: b changes
            other.append(threading.Thread(target=pen._hold_client_skin,
                                          args=("session b", 0.3), kwargs={"refuse_empty": False}))
            other[0].start()
            other[0].join(timeout=1.0)  # b waits for a's change to end (or, unguarded, is done)
        return skins

    pen._skins_with = skins_with_then_another_holder
    pen._hold_client_skin("session a", 0.2, refuse_empty=False)
    other[0].join(timeout=60)
    assert not other[0].is_alive()
    assert pen._client_skins == {"session a": 0.2, "session b": 0.3}
    assert pen.client_epidermis_mm == 0.3  # the thickest held: b's was not lost
