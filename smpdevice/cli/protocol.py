"""`smp protocol`: decode captured frames for a person, and find the golden vectors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from firmware_protocol.c_codec import generate_c_codec
from firmware_protocol.codes import MsgType
from firmware_protocol.describe import describe, to_jsonable
from firmware_protocol.frame import FrameError, decode_frame
from firmware_protocol.vectors import vectors_path
from smpdevice.errors import SmpError

_SEPARATORS = re.compile(r"[\s:,\-]+")
_PREFIXES = re.compile(r"(?:^|(?<=[\s:,\-]))0[xX]")


@click.group()
def protocol() -> None:
    """Inspect the wire protocol: decode frames, print the golden vectors.

    The specification is docs/protocol.md; every frame is
    SYNC AA 55 | LEN | SEQ | TYPE | PAYLOAD | CRC-32 (little-endian).

    \b
    Examples:
      smp protocol decode aa55020909fa007c8c9f60
      smp protocol vectors --show
      smp protocol c-codec --out firmware/protocol
    """


def _parse_hex(text: str) -> bytes:
    """Bytes from hex written the way people paste it: spaces, colons, dashes, 0x prefixes
    (a prefix begins the text or a group: `aa55...0x` or `aa0x55` is no hex)."""
    cleaned = _SEPARATORS.sub("", _PREFIXES.sub("", text))
    if not cleaned:
        raise ValueError("no hex digits")
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)}): a byte is two digits")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next(c for c in cleaned if c not in "0123456789abcdefABCDEF")
        raise ValueError(f"{bad!r} is not a hex digit") from None


def _decode_one(text: str) -> dict[str, Any]:
    """One argument -> a result dict: the frame's type, seq and fields, or the error."""
    result: dict[str, Any] = {"input": text}
    try:
        frame = decode_frame(_parse_hex(text))
    except (ValueError, FrameError) as exc:
        result["error"] = str(exc)
        return result
    msg = frame.message
    result.update(
        type=MsgType(msg.TYPE).name,
        type_code=int(msg.TYPE),
        seq=frame.seq,
        fields=to_jsonable(msg),
        readable=dict(describe(msg)),
    )
    return result


def _print_human(result: dict[str, Any]) -> None:
    if "error" in result:
        click.secho(f"{result['input']}: {result['error']}", fg="red", err=True)
        return
    click.echo(f"{result['type']} (0x{result['type_code']:02X})  seq {result['seq']}")
    readable: dict[str, str] = result["readable"]
    width = max((len(k) for k in readable), default=0)
    for name, text in readable.items():
        click.echo(f"  {name:<{width}}  {text}")
    if not readable:
        click.echo("  (no payload)")


@protocol.command()
@click.argument("frames", nargs=-1, required=True, metavar="HEX...")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list, one object per frame, for scripts."
)
def decode(frames: tuple[str, ...], as_json: bool) -> None:
    """Decode frames captured on the link and print what they say.

    Each HEX argument is one whole frame, from the sync bytes AA 55 to the CRC. Spaces,
    colons, dashes and 0x prefixes are ignored, so paste it as your tool printed it (quote it
    if it has spaces). Fields are shown in physical units and codes by name; a frame that
    is not valid prints the precise reason (bad CRC, wrong length, unknown type). Exits 1 if
    any frame is not valid.

    \b
    Examples:
      smp protocol decode aa55040202efbeadde3a860434
      smp protocol decode "aa 55 03 05 42 03 02 01 24 b6 3a a3"
      smp protocol decode --json aa:55:00:01:01:de:2c:4a:fe
    """
    results = [_decode_one(text) for text in frames]
    if as_json:
        for r in results:
            r.pop("readable", None)
        click.echo(json.dumps(results, indent=1))
    else:
        for i, r in enumerate(results):
            if i:
                click.echo()
            _print_human(r)
    if any("error" in r for r in results):
        click.get_current_context().exit(1)


@protocol.command()
@click.option("--show", is_flag=True, help="Print the file's contents instead of its path.")
def vectors(show: bool) -> None:
    """Print where the golden vectors file is (or, with --show, its contents).

    The vectors are the reference a firmware implementation is tested against: a JSON list
    of {name, seq, type, fields, hex}, each a message and its exact frame. Check your encoder
    produces `hex` from `fields` and your decoder the reverse. The format is described in
    docs/protocol.md, "Worked examples".

    \b
    Examples:
      smp protocol vectors                 /path/to/firmware_protocol/vectors.json
      smp protocol vectors --show | jq '.[] | select(.type == "TELEMETRY")'
    """
    path = vectors_path()
    if show:
        click.echo(path.read_text(encoding="utf-8"), nl=False)
    else:
        click.echo(str(path))


@protocol.command("c-codec")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(path_type=str), help="Directory to write into (created if needed).")
@click.option("--force", is_flag=True, help="Overwrite files of an earlier generation.")
def c_codec(out_dir: str, force: bool) -> None:
    """Write the C99 codec for the pen's firmware: smp_protocol.h and smp_protocol.c.

    Generated from the same catalogue as this host: message structs (units in the field
    names), encode/decode, CRC-32 and CRC_EXTRA, a byte-at-a-time frame parser without heap,
    the codes with their descriptions, the state rules, the schema hash. Plain C99, no
    dependencies; how to use it: docs/protocol.md, "For firmware authors". Refuses to
    overwrite existing files unless --force.

    \b
    Examples:
      smp protocol c-codec --out firmware/protocol
      smp protocol c-codec --out firmware/protocol --force
    """
    files = generate_c_codec()
    if not out_dir.strip():  # Path("") is the current directory: never meant
        raise SmpError("--out is empty; give the directory to write into.")
    _write_codec(Path(out_dir), files, force)


def _write_codec(out_dir: Path, files: dict[str, str], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SmpError(f"--out {out_dir}: exists and is not a directory; give a directory.")
    from smpdevice.paths import refuse_record_output

    # a link named smp_protocol.c to a pass log is never written through
    refuse_record_output([out_dir / name for name in files], "--out")
    folders = [name for name in files
               if (out_dir / name).is_dir() and not (out_dir / name).is_symlink()]
    if folders:
        raise SmpError(f"--out {out_dir}: {', '.join(folders)} is a directory, not a file of "
                       "an earlier generation; remove it or choose another directory.")
    # lexists: a link whose target is missing (a shared header not mounted) is there too
    existing = [name for name in files if os.path.lexists(out_dir / name)]
    if existing and not force:
        raise SmpError(
            f"--out {out_dir}: {', '.join(existing)} already there; pass --force to overwrite "
            "them, or choose another directory."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_whole(out_dir, files)
    except OSError as exc:
        raise SmpError(
            f"--out {out_dir}: cannot write there ({exc.strerror or exc}); choose a directory "
            "you can write to."
        ) from None
    for name in files:
        click.echo(str(out_dir / name))


def _write_whole(out_dir: Path, files: dict[str, str]) -> None:
    """The files written together or not at all: each to a temporary name beside it, then,
    once all are complete, renamed over their names, the earlier files kept aside until every
    rename is done and put back if one fails (a full disk, a name that is a directory: the
    earlier header and source stay a pair). A link of that name is replaced, never written
    through. A failure removes what it made."""
    import tempfile

    made: list[str] = []
    kept: list[tuple[str, Path]] = []  # (aside, name): earlier files moved aside
    placed: list[Path] = []
    try:
        for name, text in files.items():
            fd, temp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            made.append(temp)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            for temp, name in zip(made, files, strict=True):
                target = out_dir / name
                os.chmod(temp, 0o666 & ~umask)  # as a plain write makes it (mkstemp: 0600)
                if os.path.lexists(target):
                    aside = tempfile.mktemp(prefix=f".{name}.old.", dir=out_dir)
                    os.rename(target, aside)
                    kept.append((aside, target))
                os.rename(temp, target)
                placed.append(target)
        except OSError:
            for target in placed:
                os.unlink(target)
            for aside, target in kept:
                os.rename(aside, target)
            kept.clear()
            raise
    finally:
        for temp in made:
            if os.path.lexists(temp):
                os.unlink(temp)
        for aside, _target in kept:  # all placed: the earlier files go
            os.unlink(aside)
