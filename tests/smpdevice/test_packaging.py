"""What `smp demo` needs ships inside the wheel, not only in a checkout's examples/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from smpdevice.cli import demo

ROOT = Path(__file__).resolve().parents[2]
# What a wheel is built from (a copy, so the build never writes into the working tree).
SOURCES = ("pyproject.toml", "README.md", "smpdevice", "firmware_protocol", "simulators")


def test_the_demo_reads_its_files_from_the_package_not_the_checkout():
    assert "examples" not in str(demo.PROFILE) and "examples" not in str(demo.SCREENING)
    assert demo.PROFILE.is_file() and demo.SCREENING.is_file()


@pytest.mark.parametrize("name", ["session1_base_density.yaml", "screening_clear.yaml"])
def test_the_packaged_copies_equal_the_examples_users_read(name):
    packaged = ROOT / "smpdevice" / "data" / name
    assert packaged.read_bytes() == (ROOT / "examples" / name).read_bytes(), (
        f"smpdevice/data/{name} differs from examples/{name}: copy the example over")


def test_the_build_requirements_name_the_backend_the_wheel_is_built_with():
    """The wheel below is built by this venv's backend, not in pip's isolated environment made
    from `[build-system].requires` (as `pip install .` does): so check those requirements
    here, that they parse, name the backend's distribution, and admit the version built with."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    requires = {r.name: r for r in map(Requirement, system["requires"])}
    backend = system["build-backend"].partition(".")[0]  # setuptools.build_meta: setuptools
    assert backend in requires, f"{backend} is not in [build-system].requires {sorted(requires)}"
    assert requires[backend].specifier.contains(version(backend)), (
        f"this venv's {backend} {version(backend)} is outside {requires[backend]}")


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path / "wheel"
    # The PEP 517 hook that `pip wheel` calls, of the backend pyproject.toml names, from this
    # venv (the `test` extra holds a setuptools that builds wheels): the same wheel as pip's,
    # without pip's isolated environment, which installed the backend afresh every run (about
    # 5 CPU-s and 10 s of the suite).
    backend = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]["build-backend"]
    done = subprocess.run(
        [sys.executable, "-c", "import importlib, sys; "
         "print(importlib.import_module(sys.argv[1]).build_wheel(sys.argv[2]))",
         backend, str(out)],
        cwd=src, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("smpdevice-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_demo_files_and_the_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("session1_base_density.yaml", "screening_clear.yaml"):
        assert f"smpdevice/data/{name}" in names
    assert "firmware_protocol/vectors.json" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    lines = zipfile.ZipFile(wheel).read(entry_points).decode().splitlines()
    assert "smp = smpdevice.entry:main" in [line.strip() for line in lines]


@pytest.mark.slow
def test_smp_demo_runs_from_the_wheel_in_a_fresh_venv(wheel, tmp_path):
    """Installed from the wheel, outside the checkout: `smp demo --quick` works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = venv / "bin" / "pip"
    done = subprocess.run([str(pip), "install", "--quiet", str(wheel)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(SMP_DATA_DIR=str(tmp_path / "data"), SMP_LOG_LEVEL="error")
    run = subprocess.run([str(venv / "bin" / "smp"), "demo", "--quick"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Demo finished" in run.stdout and "Keep the treated area dry" in run.stdout
