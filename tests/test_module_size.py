"""Issue 13: no module of smpdevice/, firmware_protocol/ or simulators/ is over 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("smpdevice", "firmware_protocol", "simulators")
MAX_LINES = 400


def module_sizes() -> dict[str, int]:
    """Every module of the three packages (subpackages too), as its path: its line count."""
    return {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def test_the_packages_have_modules_to_measure():
    sizes = module_sizes()
    assert {"smpdevice/records/sqlite.py", "firmware_protocol/messages.py",
            "simulators/sim.py"} <= set(sizes)
    assert all(n > 0 for name, n in sizes.items() if not name.endswith("__init__.py"))


def test_no_module_is_over_400_lines():
    over = {name: n for name, n in module_sizes().items() if n > MAX_LINES}
    assert not over, "over 400 lines (split it into modules with one job each): " + ", ".join(
        f"{name} ({n})" for name, n in sorted(over.items()))
