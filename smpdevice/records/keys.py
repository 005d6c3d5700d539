"""The installation key: Ed25519, signs the pass log's chain heads (`smpdevice.records.signing`).

One private key per installation, created on first use in the key directory: `$SMP_KEY_DIR`,
else `$XDG_CONFIG_HOME/smpdevice`, else `~/.config/smpdevice`. It is kept apart from the data
directory on purpose: a copy of the data (a backup, a stolen laptop's log) without the key
cannot be re-signed; a key directory inside the data directory is used after one `warning:`
line on stderr (once a process) saying to move it. The directory is 0700 and the key file 0600,
whatever the umask; a looser key file (restored with `cp`, say) is made 0600 by the next writer
(its directory 0700, unless that is the home directory, `/` or not the user's), said in one
`warning:` line; readers change nothing; and a writer refuses to sign with a key file others
can read that it cannot tighten (another user's, read-only media): one line, exit 2. Lose the key
and the heads it signed can still be checked against its public key (`smp keys show` prints
it, the central store and each log record it), but nothing new can be signed with it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smpdevice.errors import SmpError

# cryptography (about 13 ms of imports, its `serialization` with the ssh formats) is imported
# where a key is made, read or a signature made or checked: a command that only reads the pass
# log (`smp sessions list`, `smp sessions show`) never loads it (issue 13: start-up).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_FILE_NAME = "installation-ed25519.pem"


class InstallationKeyError(SmpError):
    """The installation key cannot be read or created."""


class KeyArgumentError(SmpError):
    """A key named on the command line is not a fingerprint or a public key."""


def key_dir() -> Path:
    from smpdevice.config import home_dir, user_path

    env = os.environ.get("SMP_KEY_DIR")
    if env and not env.strip():  # never a relative directory named " " (as SMP_DATA_DIR)
        from smpdevice.config import ConfigError

        raise ConfigError("$SMP_KEY_DIR", ["SMP_KEY_DIR must not be blank"])
    if env:
        return user_path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or home_dir() / ".config"
    return Path(base) / "smpdevice"


def fingerprint_of(public_raw: bytes) -> str:
    """SHA-256 of the raw public key, hex, in groups of 4 for reading aloud (first 32 hex)."""
    digest = hashlib.sha256(public_raw).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class PublicKey:
    """A public key that checks signatures; `hex` is its raw 32 bytes."""

    hex: str

    @cached_property
    def fingerprint(self) -> str:  # cached: a writer names it in every signed head
        return fingerprint_of(bytes.fromhex(self.hex))

    def verify(self, signature_b64: str, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.hex)).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class InstallationKey:
    """The private key (signs) and its public half."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        from cryptography.hazmat.primitives import serialization

        self._private = private
        self.path = path
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        self.public = PublicKey(raw.hex())

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def sign(self, message: bytes) -> str:
        """The signature of `message`, base64url without padding (86 characters)."""
        return base64.urlsafe_b64encode(self._private.sign(message)).rstrip(b"=").decode()

    def pseudonym_secret(self) -> bytes:
        """A secret for export pseudonyms, derived from the key (never the key itself)."""
        from cryptography.hazmat.primitives import serialization

        raw = self._private.private_bytes(serialization.Encoding.Raw,
                                          serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
        return hashlib.sha256(b"smpdevice pseudonyms\0" + raw).digest()

    @classmethod
    def generate(cls) -> InstallationKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, directory: Path | None = None) -> InstallationKey:
        """This installation's key; created (0600, in a 0700 directory) on first use."""
        from cryptography.hazmat.primitives import serialization

        if directory is None:
            directory = key_dir()
            _warn_inside_data(directory)
        path = directory / KEY_FILE_NAME
        try:
            pem = _read_key_file(path, signing=True)
            if pem is not None:
                return cls._from_pem(pem, path)
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
            key = cls.generate()
            pem = key._private.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
            try:
                _publish(path, pem)
            except FileExistsError:  # two first uses at once: the loser loads the winner's
                return cls._load(path)
            return cls(key._private, path)
        except OSError as exc:
            raise InstallationKeyError(
                f"cannot read or create the installation key {path}: {exc.strerror or exc}. "
                "Set SMP_KEY_DIR to a private writable directory (not the data directory)."
            ) from exc

    @classmethod
    def _load(cls, path: Path, *, signing: bool = True) -> InstallationKey:
        pem = _read_key_file(path, signing=signing)
        if pem is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        return cls._from_pem(pem, path)

    @classmethod
    def _from_pem(cls, pem: bytes, path: Path) -> InstallationKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not pem:  # never a key: only a first use cut before its write (an older version)
            raise InstallationKeyError(
                f"the installation key {path} is empty: it was never written (its first use "
                "was cut by a full disk or a crash). If nothing was ever signed with it here, "
                "delete the file and a new key is made; else restore it from your key backup")
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise InstallationKeyError(f"the installation key {path} is damaged ({exc}); "
                                       "restore it from your key backup") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise InstallationKeyError(f"{path} is not an Ed25519 key; restore the "
                                       "installation key")
        return cls(private, path)


# A PEM Ed25519 key is 119 bytes; anything far larger is not one (never read whole).
MAX_KEY_FILE_BYTES = 64 * 1024


def _read_key_file(path: Path, *, signing: bool = False) -> bytes | None:
    """The bytes of the key file, None when nothing is there. Opened non-blocking and checked
    with fstat: a FIFO, a device or a directory at the key's name is refused at once
    (InstallationKeyError, exit 2), never waited on; a symlink to a key file is followed, as
    it always was. When the key is to sign (`signing`), a key file others can read is made
    0600 (`_tighten_key`), or refused when it cannot be; a reader leaves it as it is."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InstallationKeyError(
                f"the installation key {path} is not a regular file (a directory, device, pipe "
                "or socket): put the key file itself there (restore it from your key backup), "
                "or remove it and a new key is made")
        _tighten_key(fd, path, info.st_mode, signing)
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise InstallationKeyError(
                f"the installation key {path} is {info.st_size:,} bytes, not a key; restore "
                "it from your key backup")
        chunks: list[bytes] = []
        while chunk := os.read(fd, MAX_KEY_FILE_BYTES):
            chunks.append(chunk)
            if sum(map(len, chunks)) > MAX_KEY_FILE_BYTES:
                raise InstallationKeyError(f"the installation key {path} grew past "
                                           f"{MAX_KEY_FILE_BYTES:,} bytes, not a key")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _tighten_key(fd: int, path: Path, mode: int, signing: bool) -> None:
    """A key file others can read is made 0600 by a writer (`signing`), and its directory
    0700 unless that is the user's home, `/`, another user's or a shared sticky one (like
    /tmp): one `warning:` line says what was done. A reader (`smp keys show`, verify)
    changes nothing, nor does anyone when the key file is private. A loose key file that
    cannot be tightened is refused to sign."""
    if not mode & 0o077 or not signing:
        return
    try:
        os.fchmod(fd, 0o600)  # the file itself, through a symlink too
    except OSError as exc:
        raise InstallationKeyError(
            f"the installation key {path} can be read by others (mode "
            f"{stat.S_IMODE(mode):o}) and cannot be made 0600 ({exc.strerror or exc}): "
            "nothing was signed; as its owner run `chmod 600` on it") from exc
    done = f"made 0600{_tighten_folder(path.parent)}"
    sys.stderr.write(f"warning: the installation key {path} could be read by others (mode "
                     f"{stat.S_IMODE(mode):o}): {done}\n")


def _tighten_folder(folder: Path) -> str:
    """`folder` (the key file's) made 0700 when only this user's own: the words saying so."""
    try:
        info = os.stat(folder)
        real = os.path.realpath(folder)
        if (not info.st_mode & 0o077 or info.st_uid != os.geteuid()
                or info.st_mode & stat.S_ISVTX
                or real in {os.path.realpath(Path.home()), os.path.realpath("/")}):
            return ""  # private already, or a folder not the key's alone: left as it is
        os.chmod(folder, 0o700)
    except (OSError, RuntimeError):  # RuntimeError: no home directory to compare with
        return ""
    return f", and its directory {folder} 0700 (was {stat.S_IMODE(info.st_mode):o})"


_warned_inside: set[Path] = set()


def _warn_inside_data(directory: Path) -> None:
    """One `warning:` line (once a process) when the key directory is the data directory or
    inside it: every copy of the data (a backup) would then carry the key that re-signs it."""
    from smpdevice.paths import data_dir

    try:
        data = Path(os.path.realpath(data_dir(create=False)))
    except (SmpError, OSError):  # no data directory to be inside of
        return
    real = Path(os.path.realpath(directory))
    if (real == data or data in real.parents) and real not in _warned_inside:
        _warned_inside.add(real)
        sys.stderr.write(
            f"warning: the installation key's directory {directory} is inside the data "
            f"directory {data}: every copy of the data then holds the key that can re-sign "
            f"it. Move {KEY_FILE_NAME} to a private directory outside it and set SMP_KEY_DIR "
            "there\n")


def _publish(path: Path, pem: bytes) -> None:
    """Put `pem` at `path` whole or not at all: written and synced under a temporary name
    beside it (0600), then hard-linked to `path`, which fails (FileExistsError) if another
    process made the key first. A full disk or a crash never leaves a cut or empty key, and
    nobody reads the key before its last byte is written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _write_new(path, pem)  # a file system without hard links (FAT, some mounts)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    with contextlib.suppress(OSError):  # the new name itself survives a power cut
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# What link() says on a file system that has no hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _write_new(path: Path, pem: bytes) -> None:
    """Create `path` (FileExistsError if it is there) and write `pem`; a failed write removes
    the file it made, so no empty key stays behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def load_public(directory: Path | None = None) -> PublicKey | None:
    """This installation's public key, or None where no key was ever created."""
    path = (directory or key_dir()) / KEY_FILE_NAME
    pem = _read_key_file(path)
    return None if pem is None else InstallationKey._from_pem(pem, path).public


def recorded_key(text: object) -> PublicKey | None:
    """The key a row of a log's `signing_keys` holds (64 lower-case hex digits, as a writer
    records it); None when it holds none (a row added by hand, or damaged): named by verify
    and refused by a writer, never a traceback (review 18b)."""
    if isinstance(text, str) and re.fullmatch(r"[0-9a-f]{64}", text):
        return PublicKey(text)
    return None


def parse_trusted_key(text: str) -> str | PublicKey:
    """A key an auditor names: a fingerprint as `smp keys show` prints it (32 hex digits,
    colons and spaces optional) -> the fingerprint; a 64-hex public key -> that key."""
    digits = re.sub(r"[\s:]", "", text).lower()
    if re.fullmatch(r"[0-9a-f]{32}", digits):
        return ":".join(digits[i:i + 4] for i in range(0, 32, 4))
    if re.fullmatch(r"[0-9a-f]{64}", digits):
        return PublicKey(digits)
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise KeyArgumentError(
        f"--key {shown!r} is not a key fingerprint: give the 32 hex digits `smp keys show` "
        "prints on the installation that wrote the log (e.g. 1a2b:3c4d:5e6f:7a8b:9c0d:1e2f:"
        "3a4b:5c6d; also in every session header), or its 64-hex public key")


def recorded_keys(conn: Any) -> dict[str, PublicKey]:
    """The keys the log's `signing_keys` holds, by each key's own fingerprint (the stored label
    is not evidence); a row that holds no key is left out (`recorded_key`)."""
    rows = conn.execute("SELECT public_key FROM signing_keys")
    return {k.fingerprint: k for k in (recorded_key(public) for (public,) in rows) if k is not None}
