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
# A keyword string's password value: quoted (an unterminated quote runs to the end), or
# unquoted up to a space that no backslash escapes (libpq reads `ab\ cd` as "ab cd").
_KEYWORD_SECRET = re.compile(
    r"(?is)\b(ssl)?password\s*=\s*('(?:[^'\\]|\\.)*(?:'|\\?\Z)|(?:\\.|\S)+)")
# An address mistyped without its `://` may still hold a user part (`postgresql:u:PASS@h`,
# `postgresql:/u:PASS@h`, `postgresql//u:PASS@h`, `u:PASS@h`): see `_loose_passwords`.
_SCHEME = re.compile(r"(?i)postgres(?:ql)?:")


def _loose_passwords(text: str) -> list[tuple[int, int]]:
    """(start, end) of the password in each word of `text` that has an `@`: the word up to
    its last `@`, less a leading `postgresql:` (when another `:` follows), is the user part,
    and its password all after its first `:` (more masked, never less)."""
    spans = []
    for word in re.finditer(r"\S*@\S*", text):
        head = word.group()[:word.group().rfind("@")]
        scheme = _SCHEME.match(head)
        skip = scheme.end() if scheme and ":" in head[scheme.end():] else 0
        colon = head.find(":", skip)
        if colon >= 0:
            spans.append((word.start() + colon + 1, word.start() + len(head)))
    return spans


def _split(url: str) -> tuple[str, str, str]:
    """scheme://, userinfo (may be ""), the rest (host, path, ?query).

    libpq takes the user part to run to the first `@` before any `/` (a raw `?` in a password
    is still the password); a raw `@`, `/` or `?` in a password puts it further. The user part
    shown masked runs to the last `@` of the address: more masked, never less (an `@` in the
    query masks the host too).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url
    end = rest.rfind("@")
    return scheme + "://", rest[:end + 1], rest[end + 1:]


def _passwords(rest: str) -> list[str]:
    """The password of each way of reading the user part (up to each `@` of the address)."""
    found: list[str] = []
    for at, char in enumerate(rest):
        if char == "@" and ":" in rest[:at]:
            found.append(rest[:at].split(":", 1)[1])
    if found:  # the driver may cut at the first @ and quote the rest as a host name
        found += [part for part in found[-1].split("@") if len(part) >= 3]
    return found


def _params(rest: str) -> list[str]:
    """The rest cut at its first `?` and every `&`, the separators kept (a later `?` is a
    value's): a `password=` after any of them is masked, even one libpq would read as part of
    a host name."""
    head, query, params = rest.partition("?")
    return [*re.split("(&)", head), *([query, *re.split("(&)", params)] if query else [])]


def _secret_param(item: str) -> bool:
    key, eq, _value = item.partition("=")
    return bool(eq) and unquote(key).strip().lower() in SECRET_KEYS


def secrets(url: str) -> list[str]:
    """Each secret value in `url`, raw and percent-decoded."""
    found: list[str] = []
    _scheme, sep, rest = url.partition("://")
    if not sep:
        for m in _KEYWORD_SECRET.finditer(url):
            value = m.group(2).strip("'")
            found += [value, re.sub(r"(?s)\\(.)", r"\1", value)]  # as libpq reads it too
            found.append(value.split()[0] if value.split() else "")  # as a reader would cut it
        found += [url[start:end] for start, end in _loose_passwords(url)]
    else:  # every reading of the address: a password is never missed for a raw ? @ / in it
        found += _passwords(rest)
        items = [*_params(rest), *_params(_split(url)[2])]  # a ? in the user part, or not
        found += [item.partition("=")[2] for item in items if _secret_param(item)]
    return [s for v in found if v for s in {v, unquote(v)} if s]


def safe(url: str) -> str:
    """`url` with every password shown as ***."""
    scheme, userinfo, rest = _split(url)
    if not scheme:  # a keyword string, or an address mistyped without its `://`
        url = _KEYWORD_SECRET.sub(lambda m: f"{m.group(1) or ''}password={MASK}", url)
        for start, end in reversed(_loose_passwords(url)):
            url = url[:start] + MASK + url[end:]
        return url
    if ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{MASK}@"
    rest = "".join(f"{item.partition('=')[0]}={MASK}" if _secret_param(item) else item
                   for item in _params(rest))
    return scheme + userinfo + rest


# A secret this short is masked only where it stands alone (not inside a word of the
# driver's text: a one-letter password would mask every such letter of it). Where the URL
# gives it, a password is bounded by : @ = & or the end, so a quote of the URL keeps it alone.
SHORT_SECRET = 6


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message) with every secret of `url` replaced by ***."""
    for secret in sorted(secrets(url), key=len, reverse=True):
        if len(secret) >= SHORT_SECRET:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", MASK, text)
    return text
