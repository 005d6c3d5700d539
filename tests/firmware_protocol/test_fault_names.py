"""`Fault.names` reads its flags from one table (an E-stop's EVENT is logged with them on the
reply's path); it must name exactly the flags that iterating the members names, for every value
a 16-bit field can carry, defined bits or not."""

from firmware_protocol.codes import Fault


def _by_members(fault: Fault, members: list[Fault]) -> list[str]:
    return [f.name for f in members if f in fault and f.name]


def test_names_equal_the_members_for_every_16_bit_value() -> None:
    members = list(Fault)  # iterated once, not for each of the 65,536 values
    for value in range(1 << 16):
        fault = Fault(value)
        assert fault.names == _by_members(fault, members), value


def test_names_in_bit_order() -> None:
    assert Fault(Fault.POWER_RESET | Fault.OVERCURRENT | Fault.JAM).names == [
        "OVERCURRENT", "JAM", "POWER_RESET"]
    assert Fault(0).names == []
    assert Fault(0x100).names == []  # a bit the catalogue does not define is not named
