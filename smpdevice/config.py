"""The station config file: one place for a station's defaults (port, technician, ...).

A TOML file at `$SMP_CONFIG`, else `$XDG_CONFIG_HOME/smpdevice/config.toml` (normally
`~/.config/smpdevice/config.toml`). Every key is optional:

    port = "/dev/ttyACM0"          # or "usb:A1B2C3", "socket://127.0.0.1:7000", "pensim://"
    technician = "ana"
    data_dir = "~/smp-data"        # pass log, calibrations (relative: to this file's folder)
    envelope = "envelope.yaml"     # zone limits (relative: to this file's folder)
    footswitch = "required"        # required | optional | off (smpdevice.control.footswitch)
    log_level = "warning"          # debug | info | warning | error

Precedence, for every setting: command-line option > environment variable > this file >
built-in default. The file is read strictly: an unknown key, a wrong type, a value outside its
choices or a file over 64 KiB is refused, one line per issue (`smp config check`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.loader import Limits, LoadError, load_bytes, read_capped
from smpdevice.outcomes import ExitCode

CONFIG_NAME = "config.toml"
MAX_CONFIG_BYTES = 64 * 1024
FOOTSWITCH_MODES = ("required", "optional", "off")
LOG_LEVELS = ("debug", "info", "warning", "error")
# name -> (environment variable, allowed values or None for any non-empty string, is a path)
SETTINGS: dict[str, tuple[str, tuple[str, ...] | None, bool]] = {
    "port": ("SMP_PORT", None, False),
    "technician": ("SMP_TECHNICIAN", None, False),
    "data_dir": ("SMP_DATA_DIR", None, True),
    "envelope": ("SMP_ENVELOPE", None, True),
    "footswitch": ("SMP_FOOTSWITCH", FOOTSWITCH_MODES, False),
    "log_level": ("SMP_LOG_LEVEL", LOG_LEVELS, False),
}
DEFAULTS: dict[str, str | None] = {
    "port": None,  # `smp run` and `smp calibrate` never choose a pen (or the simulator) alone
    "technician": None,
    "data_dir": None,  # smpdevice.paths: $XDG_DATA_HOME/smpdevice
    "envelope": None,  # smpdevice.envelope.DEFAULT_ZONES
    "footswitch": "optional",
    "log_level": "warning",
}
MAX_VALUE_CHARS = 4096
# Settings that are names, checked by the rule their users apply (max characters).
NAMES = {"technician": checks.TECHNICIAN_MAX_CHARS, "port": 1024}  # control/options.py: port


class ConfigError(SmpError):
    """The station config file (or a setting's environment variable) is not valid."""

    exit_code = ExitCode.CHECK_FAILED

    def __init__(self, path: Path | str, issues: list[str]):
        self.path = Path(path)
        self.issues = issues
        if str(path).startswith("$"):  # an environment variable, not the file
            super().__init__(f"{str(path)[1:]} is not valid: {'; '.join(issues)}. Fix or unset "
                             "it.")
            return
        listed = "\n  ".join(f"{self.path}: {i}" for i in issues)
        super().__init__(
            f"the station config has {len(issues)} error{'s' if len(issues) != 1 else ''} "
            f"(fix them, then check again: smp config check):\n  {listed}"
        )


@dataclass(frozen=True)
class Setting:
    """A setting's value and where it came from (option, environment, file or default)."""

    name: str
    value: str | None
    source: str


class HomeDirError(SmpError):
    """This user has no home directory (HOME unset, no passwd entry) and a default path under
    `~` was needed: say which variables to set instead."""


def home_dir() -> Path:
    """This user's home directory; HomeDirError (exit 2) when the system knows none (a
    container's `--user N`, a service's dynamic user, `env -i` in cron)."""
    try:
        return Path.home()
    except (RuntimeError, KeyError, OSError):
        raise HomeDirError(
            "cannot find this user's home directory (HOME is not set and the system has no "
            f"entry for uid {os.getuid()}): set HOME, or SMP_CONFIG, SMP_DATA_DIR and "
            "SMP_KEY_DIR") from None


def user_path(text: str | os.PathLike[str]) -> Path:
    """`text` as a path, a leading `~` expanded (HomeDirError when there is no home); a NUL
    character, which no file name can hold, is InvalidArgument (open() raised a bare
    ValueError); a path-like giving bytes is InvalidArgument too (review 18h)."""
    raw = os.fspath(text)
    if not isinstance(raw, str):
        raise checks.InvalidArgument(f"the path {raw!r} is bytes: give a file path as str")
    if "\0" in raw:
        raise checks.InvalidArgument(f"the path {os.fspath(text)!r} holds a NUL character: "
                                     "no file can have that name")
    path = Path(text)
    if not str(path).startswith("~"):
        return path
    try:
        return path.expanduser()
    except (RuntimeError, KeyError, OSError):
        home_dir()  # `~/...` without a home: says which variables to set
        raise HomeDirError(f"cannot expand {text}: the system knows no such user's home "
                           "directory; give the full path") from None


def config_path() -> Path:
    """Where the station config file is (whether or not it exists)."""
    explicit = os.environ.get("SMP_CONFIG")
    if explicit:
        return user_path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or home_dir() / ".config"
    return Path(base) / "smpdevice" / CONFIG_NAME


def found_config_path() -> Path | None:
    """config_path(), or None for a user with no home directory and neither SMP_CONFIG nor
    XDG_CONFIG_HOME: such a user has no config file (as `setting` reads it), no error."""
    try:
        return config_path()
    except HomeDirError:
        if os.environ.get("SMP_CONFIG") or os.environ.get("XDG_CONFIG_HOME"):
            raise  # a `~` in the variable that names it: says what to do
        return None


def load_config(path: Path | None = None) -> dict[str, str]:
    """The validated settings of the config file ({} when there is none). Raises ConfigError
    listing every issue."""
    path = config_path() if path is None else path
    reading = _read(path)
    if reading.issues:
        raise ConfigError(path, [issue for _, issue in reading.issues])
    return reading.values


@dataclass(frozen=True)
class _Reading:
    """A config file as far as it could be read: its valid settings, and each issue with the
    key it is about ("" for the file as a whole: then nothing in it was read)."""

    values: dict[str, str]
    issues: list[tuple[str, str]]

    def unreadable(self, name: str) -> bool:
        """Whether setting `name` may be in the file but cannot be read from it."""
        return any(key in ("", name) for key, _ in self.issues)


def _read(path: Path) -> _Reading:
    if not path.exists() and not path.is_symlink():
        return _Reading({}, [])
    # The one strict loader: regular files only (a FIFO never hangs), size and depth capped,
    # duplicate keys refused; the config is TOML whatever its name.
    try:
        data = load_bytes(read_capped(path, MAX_CONFIG_BYTES), source=str(path), kind="toml",
                          limits=Limits(max_bytes=MAX_CONFIG_BYTES))
    except LoadError as exc:
        return _Reading({}, [("", f"{exc.problem}; {exc.hint}")])
    return _validate(data, path.parent)


def _validate(data: dict[str, Any], base: Path) -> _Reading:
    values: dict[str, str] = {}
    issues: list[tuple[str, str]] = []
    for key, value in data.items():
        if key not in SETTINGS:
            issues.append((f"?{key}", f"unknown key {key!r}; known keys: {', '.join(SETTINGS)}"))
            continue
        _, choices, is_path = SETTINGS[key]
        problem = check_value(key, value)
        if problem:
            issues.append((key, problem))
            continue
        if is_path:
            value = str((base / user_path(value)).resolve(strict=False))  # HomeDirError
        values[key] = value if choices is None else value.lower()
    return _Reading(values, issues)


def check_value(key: str, value: object) -> str:
    """What is wrong with `value` for setting `key` ("" when it is fine)."""
    _, choices, _ = SETTINGS[key]
    if not isinstance(value, str):
        kind = {dict: "a table", list: "an array", bool: "a boolean", int: "an integer",
                float: "a number"}.get(type(value), "a date or time")
        return f"{key} must be a string, got {kind} ({value!r:.40})"
    if not value.strip():
        return f"{key} must not be empty"
    if len(value) > MAX_VALUE_CHARS or "\x00" in value:
        return f"{key} is not a usable value (longer than {MAX_VALUE_CHARS} characters or NUL)"
    if choices is not None and value.lower() not in choices:
        return f"{key} must be one of {', '.join(choices)}; got {value!r:.40}"
    if key in NAMES:  # recorded and shown as typed: the same rule as the option's
        try:
            checks.text(key, value, max_len=NAMES[key])
        except checks.InvalidArgument as exc:
            return str(exc).removesuffix(f" Correct {key} to an allowed value.").rstrip(".")
    return ""


def setting(name: str, option: str | None = None, *, strict: bool = True) -> Setting:
    """The value of setting `name`: the command-line `option` if given, else its environment
    variable, else the config file, else the built-in default.

    `strict=False` ignores a broken config file (for the log level: `smp config check` must
    still run to say what is wrong with it); a bad environment variable is always refused.
    """
    env_name, choices, _ = SETTINGS[name]
    if option is not None:
        return Setting(name, option, "option")
    env = os.environ.get(env_name)
    if env:
        problem = check_value(name, env)
        if problem:
            raise ConfigError(f"${env_name}", [problem])
        return Setting(name, env.lower() if choices else env, f"environment {env_name}")
    try:
        path = config_path()
    except HomeDirError:  # no home, no SMP_CONFIG: no config file can be there
        return Setting(name, DEFAULTS[name], "default")
    try:
        values = load_config(path)
    except ConfigError:
        if strict:
            raise
        values = {}
    if name in values:
        return Setting(name, values[name], f"config file {path}")
    return Setting(name, DEFAULTS[name], "default")


# ------------------------------------------------------------------ safety stops
# An E-stop (`smp estop --port P`, the monitor's E-stop key) must never wait on a typo in the
# station config: these read what can be read and say what cannot, never raising ConfigError.


def setting_or_unreadable(name: str, option: str | None = None) -> tuple[Setting, str]:
    """`setting(name, option)`, except that a broken environment variable or config file is
    no error: where the value can still be told (the option, or the file's own key when
    only other keys are wrong) it is given with ""; where it cannot (its variable or its key
    invalid, the file unreadable) the value is None, source "unreadable", with why."""
    try:
        return setting(name, option), ""
    except (ConfigError, HomeDirError) as exc:
        failure: SmpError = exc
    env_name, _, _ = SETTINGS[name]
    env = os.environ.get(env_name)
    if env:  # the variable was set, and it is the broken part
        return Setting(name, None, "unreadable"), str(failure)
    try:
        path = config_path()
        reading = _read(path)
    except HomeDirError as exc:  # a `~` in SMP_CONFIG or in a path of the file, and no home
        return Setting(name, None, "unreadable"), str(exc)
    if reading.unreadable(name):
        why = "; ".join(issue for key, issue in reading.issues if key in ("", name))
        return Setting(name, None, "unreadable"), f"{path}: {why}"
    if name in reading.values:
        return Setting(name, reading.values[name], f"config file {path}"), ""
    return Setting(name, DEFAULTS[name], "default"), ""


def station_problems() -> str:
    """Everything wrong with this station's settings (environment variables, config file),
    as one line; "" when nothing is."""
    problems = []
    for name, (env_name, _, _) in SETTINGS.items():
        env = os.environ.get(env_name)
        if env and check_value(name, env):
            problems.append(f"{env_name}: {check_value(name, env)}")
    try:
        path = found_config_path()  # None: no home, so no config file (as `setting` reads it)
        issues = [] if path is None else [issue for _, issue in _read(path).issues]
    except HomeDirError as exc:
        return "; ".join([*problems, str(exc)])
    if issues:
        problems.append(f"the station config {path} has {len(issues)} "
                        f"error{'s' if len(issues) != 1 else ''} ({'; '.join(issues)})")
    return "; ".join(problems)
