"""Conversions between the host's physical units and the integers on the wire."""

from __future__ import annotations


def mm_to_um(depth_mm: float) -> int:
    return round(depth_mm * 1000)


def um_to_mm(depth_um: int) -> float:
    return depth_um / 1000


def hz_to_centihz(speed_hz: float) -> int:
    return round(speed_hz * 100)


def centihz_to_hz(speed_centihz: int) -> float:
    return speed_centihz / 100


def pct_to_permille(duty_pct: float) -> int:
    return round(duty_pct * 10)


def permille_to_pct(duty_permille: int) -> float:
    return duty_permille / 10


def ms_to_us(period_ms: float) -> int:
    return round(period_ms * 1000)


def us_to_ms(period_us: int) -> float:
    return period_us / 1000


def centideg_to_c(temp_centideg_c: int) -> float:
    return temp_centideg_c / 100


def c_to_centideg(temp_c: float) -> int:
    return round(temp_c * 100)


def ma_to_a(current_ma: int) -> float:
    return current_ma / 1000


def a_to_ma(current_a: float) -> int:
    return round(current_a * 1000)
