"""A PostgreSQL address as it may be shown: without its secrets.

A password can sit in the user part (`postgresql://u:S3cret@h/db`, also with an unencoded `@`
in it), in the query (`?password=S3cret`, `sslpassword=`), or in a keyword string
(`host=h password=S3cret`). Every error message that names the address shows `safe(url)`, and
text from the driver is passed through `scrub(text, url)`, which removes each secret's value
wherever it appears (a driver may quote what it could not parse).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
SECRET_KEYS = frozenset({"password", "sslpassword"})
_KEYWORD_SECRET = re.compile(r"(?i)\b(ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _split(url: str) -> tuple[str, str, str, str]:
    """scheme://, userinfo (may be ""), the rest of the address, ?query (may be "")."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    rest, qsep, query = rest.partition("?")
    # the last @ before the query: a raw @ or / in a password is still the user part (an @ in
    # the path would be masked too: more, never less)
    userinfo, at, host = rest.rpartition("@")
    return scheme + "://", (userinfo + at) if at else "", host, (qsep + query) if qsep else ""


def secrets(url: str) -> list[str]:
    """Each secret value in `url`, raw and percent-decoded."""
    found: list[str] = []
    scheme, userinfo, _rest, query = _split(url)
    if not scheme:
        found += [m.group(2).strip("'") for m in _KEYWORD_SECRET.finditer(url)]
    if ":" in userinfo:
        password = userinfo[:-1].split(":", 1)[1]
        # a raw @ in it: the driver may cut at the first @ and quote the rest as a host name
        found += [password, *(part for part in password.split("@") if len(part) >= 3)]
    for item in query[1:].split("&") if query else ():
        key, eq, value = item.partition("=")
        if eq and unquote(key).strip().lower() in SECRET_KEYS:
            found.append(value)
    return [s for v in found if v for s in {v, unquote(v)} if s]


def safe(url: str) -> str:
    """`url` with every password shown as ***."""
    scheme, userinfo, rest, query = _split(url)
    if not scheme:
        return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1) or ''}password={MASK}", url)
    if ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{MASK}@"
    if query:
        items = []
        for item in query[1:].split("&"):
            key, eq, _value = item.partition("=")
            items.append(f"{key}={MASK}" if eq and unquote(key).strip().lower() in SECRET_KEYS
                         else item)
        query = "?" + "&".join(items)
    return scheme + userinfo + rest + query


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message) with every secret of `url` replaced by ***."""
    for secret in sorted(secrets(url), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
