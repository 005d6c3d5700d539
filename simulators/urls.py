"""What a `pensim://` URL says: its options and the simulator it names (no simulator here)."""

from __future__ import annotations

import urllib.parse


def query_options(query: str) -> dict[str, list[str]]:
    """The options of a pensim:// query, `%XX` decoded but `+` kept as `+`: a fault spec joins
    message types with it (`faults=drop_type=ESTOP+NEEDLE_STOP`, docs/simulator.md), which a
    form decoding would turn into a space. A space is written `%20`."""
    return urllib.parse.parse_qs(query.replace("+", "%2B"), keep_blank_values=True)


def url_name(url: str, option: bool = True) -> str:
    """The simulator a `pensim://` URL names: `pensim://NAME` (percent-decoded, as `sim.url`
    quotes it), else (`option`) its `?name=` option given once, else ""."""
    parts = urllib.parse.urlsplit(url)
    name = urllib.parse.unquote((parts.netloc + parts.path).strip("/"))
    if not name and option:
        named = query_options(parts.query).get("name", [])
        name = named[0] if len(named) == 1 else ""
    return name


MAX_NAME_CHARS = 200


def sim_name(name: object) -> str | None:
    """A simulator's `name=` as given (None or "": one is chosen), else ValueError saying
    what a name is: it is written into `pensim://NAME` and a thread's name."""
    if name is None or name == "":
        return None
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ValueError(f"name={name!r:.60} is refused: give a text of 1 to {MAX_NAME_CHARS} "
                         "printable characters (e.g. 'chair2'), or None for pen1, pen2...")
    return name
