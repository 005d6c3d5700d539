"""The station settings of a safety stop: `smp estop --port P` and `smp monitor` (its E-stop
key). An E-stop never waits on the station config: a typo in the file, or a bad SMP_FOOTSWITCH
or SMP_LOG_LEVEL, must not keep it from a pen whose port is known. These commands take the
port as typed (or, without --port, from the part of the config that can be read), connect with
the built-in settings (they never start the needle, so the footswitch mode is not needed), and
then say what is wrong with the config in one `warning:` line (README, "The station config").
`smp clear` is no safety stop: it keeps refusing a broken config.
"""

from __future__ import annotations

import click

from smpdevice.errors import SmpError


def stop_port(option: str | None, fallback: str | None, refused: str) -> str:
    """The pen's port: `option`, else SMP_PORT, else the config's `port` (read even when other
    keys of the file are wrong), else `fallback`. Refused (exit 2, the line starting with
    `refused`) when none names a pen, or when the one that would (SMP_PORT, the file's `port`,
    a file that cannot be read at all) is broken: the stop never goes to a guessed pen."""
    from smpdevice.cli.device import no_pen_chosen
    from smpdevice.config import setting_or_unreadable

    chosen, why = setting_or_unreadable("port", option)
    if chosen.source == "unreadable":
        raise SmpError(f"{refused}no pen chosen: the station's `port` cannot be read ({why}). "
                       "Name the pen with --port PORT, and fix the setting (smp config check)")
    if chosen.value:
        return chosen.value
    if fallback:
        return fallback
    raise SmpError(refused + no_pen_chosen())


def config_warning(went_ahead: str) -> str | None:
    """The one `warning:` line for a station whose settings are broken (None when they are
    fine). When the data directory cannot be told either, the detail log is switched off for
    this command (said in the line) rather than warning again when it first writes."""
    from smpdevice.config import station_problems

    problems = station_problems()
    if not problems:
        return None
    detail = ""
    try:
        from smpdevice.paths import data_dir

        data_dir(create=False)
    except SmpError:
        _detail_log_off()
        detail = " (the detail log smp.log is off: the data directory is not known)"
    return (f"warning: {problems}; {went_ahead} on the built-in settings{detail}. Fix it "
            "before the next session: smp config check")


def _detail_log_off() -> None:
    from smpdevice.config import DEFAULTS, setting_or_unreadable
    from smpdevice.logs import configure

    root = click.get_current_context().find_root().params
    level = setting_or_unreadable("log_level", root.get("log_level"))[0].value
    configure(level or DEFAULTS["log_level"], "json" if root.get("log_json") else None)
