"""Who may do what: roles, and the token file that proves a role.

One token per role, kept in `<data dir>/service.tokens.json` (0600, in the 0700 data
directory), made at the service's first start. A client proves its role by presenting that
role's token in `rpc.hello`; it may ask for a lower role than its token gives (a console that
only watches), never a higher one. The role comes from the token, never from the client's word.
Local clients read the file themselves (`read_token`): whoever can read it is this station's
user. Tokens are compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import stat
from enum import IntEnum
from pathlib import Path

from smpdevice.errors import SmpError
from smpdevice.records.files import PRIVATE_FILE

TOKEN_FILE_NAME = "service.tokens.json"
SOCKET_NAME = "service.sock"  # the Unix socket `smp serve` listens on, in the data directory
TOKEN_BYTES = 32  # 256 bits, URL-safe text of 43 characters
MAX_TOKEN_CHARS = 128


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1  # state, telemetry, records; E-stop (anyone authenticated may)
    OPERATOR = 2  # drive the pen, run sessions
    TECHNICIAN = 3  # calibrate, clear faults

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: object) -> Role:
        if isinstance(name, str) and name.upper() in cls.__members__:
            return cls[name.upper()]
        raise AuthError(f"role {str(name)[:40]!r} is not one of viewer, operator, technician")


class AuthError(SmpError):
    """A token file or a credential is not usable; the message says what to do."""


class TokenFileOpen(AuthError):
    """The token file is readable by others: whoever can read it has its tokens."""


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE_NAME


def load_or_create_tokens(data_dir: Path) -> dict[Role, str]:
    """The station's tokens; made (0600, exclusively) on first use."""
    path = token_path(data_dir)
    tokens = {role: secrets.token_urlsafe(TOKEN_BYTES) for role in Role}
    body = json.dumps({role.label: token for role, token in tokens.items()}, indent=2) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return read_tokens(path)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return tokens


def read_tokens(path: Path, *, others_may_read: bool = False) -> dict[Role, str]:
    """Read and check a token file: private (0600, ours; `others_may_read`: an E-stop's
    reader, which the mode must never stop) and well formed."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # first: no chmod makes a directory a token file
            what = "a directory, not a file" if stat.S_ISDIR(info.st_mode) else \
                "not a regular file"
            raise AuthError(f"the token file {path} is {what}; move it away and start "
                            "`smp serve` again to make new tokens")
        if info.st_mode & 0o077 and not others_may_read:
            raise TokenFileOpen(f"the token file {path} is readable by others "
                            f"(mode {info.st_mode & 0o777:o}); run: chmod 600 {path}")
        raw = path.read_bytes()[:4096]
    except OSError as exc:
        raise AuthError(f"cannot read the token file {path}: {exc.strerror}. Start "
                        "`smp serve` once to create it, or check its permissions.") from None
    try:
        data = json.loads(raw)
        tokens = {role: data[role.label] for role in Role}
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"the token file {path} is damaged; delete it and restart "
                        "`smp serve` to make new tokens (clients then read the new ones)") from None
    for role, token in tokens.items():
        # Printable ASCII only: a token a client cannot send (a lone surrogate, a control
        # character) would make every hello with it fail, and nobody could E-stop through it.
        if not isinstance(token, str) or not 20 <= len(token) <= MAX_TOKEN_CHARS \
                or not all("!" <= ch <= "~" for ch in token):
            raise AuthError(f"the {role.label} token in {path} is malformed (20 to "
                            f"{MAX_TOKEN_CHARS} printable ASCII characters); delete the file "
                            "and restart `smp serve` to make new tokens")
    if len(set(tokens.values())) < len(tokens):  # one token for two roles: the higher wins
        raise AuthError(f"the token file {path} gives two roles the same token; delete it and "
                        "restart `smp serve` to make new tokens")
    return tokens


def read_token(data_dir: Path, role: Role | str = Role.OPERATOR, *,
               others_may_read: bool = False) -> str:
    """A local client's token for `role` (it reads the file itself)."""
    role = role if isinstance(role, Role) else Role.parse(role)
    return read_tokens(token_path(data_dir), others_may_read=others_may_read)[role]


def role_for(tokens: dict[Role, str], presented: object) -> Role | None:
    """The role whose token was presented, or None. Every token is compared (constant time)."""
    if not isinstance(presented, str) or not 0 < len(presented) <= MAX_TOKEN_CHARS:
        return None
    found = None
    # surrogatepass: a lone surrogate (valid JSON text) encodes, and matches no token
    given = presented.encode("utf-8", "surrogatepass")
    for role, token in tokens.items():
        if hmac.compare_digest(given, token.encode()):
            found = role
    return found


def remove_stale_socket(path: Path) -> None:
    """A Unix socket left by a crashed service (nobody listens on it) is removed."""
    import socket

    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise AuthError(f"{path} exists and is not a socket; move it away")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
        finally:
            probe.close()
        raise AuthError(f"another `smp serve` already listens on {path}; stop it first")
