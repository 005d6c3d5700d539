"""`DriverLease.epoch` (review 11a R01): work begun under one claim sees a loss even if the
same client drives again before the work looks. Pure: the lease on a clock of the test's."""

from __future__ import annotations

from smpdevice.service.deadman import DriverLease


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_the_epoch_changes_when_the_drive_changes_hands_not_on_a_renewal():
    clock = Clock()
    lease = DriverLease(clock)
    lease.claim("ws-1", 1000)
    first = lease.epoch
    lease.renew("ws-1")
    lease.claim("ws-1", 1000)  # pen.drive again while driving: the same claim
    assert lease.epoch == first
    clock.now_s += 2.0  # the lease ran out; the same client claims again
    lease.claim("ws-1", 1000)
    assert lease.epoch != first
    second = lease.epoch
    lease.drop("ws-1")
    lease.claim("ws-1", 1000)  # dropped (the watchdog) and back
    assert lease.epoch not in (first, second)
    third = lease.epoch
    lease.drop("ws-2")  # not the driver: nothing changes
    assert lease.epoch == third


def test_driver_lost_sees_a_loss_under_the_epoch_the_work_began_with():
    from types import SimpleNamespace

    from smpdevice.service.calibrating import driver_lost

    clock = Clock()
    lease = DriverLease(clock)
    service = SimpleNamespace(lease=lease)  # driver_lost reads only the service's lease
    lease.claim("ws-1", 1000)
    began = lease.epoch
    assert driver_lost(service, "ws-1", began) is None  # type: ignore[arg-type]
    lease.drop("ws-1")
    lease.claim("ws-1", 1000)  # lost and back before the work looked
    why = driver_lost(service, "ws-1", began)  # type: ignore[arg-type]
    assert why is not None and "ws-1 was lost" in why and "drives again" in why
    assert driver_lost(service, "ws-1") is None  # type: ignore[arg-type]  # no epoch: live
