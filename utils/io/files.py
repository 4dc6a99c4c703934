"""Atomic file writes: write beside the target, then rename, so a crash never leaves a half-written file."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def _new_temporary(path: Path, suffix: str) -> Path:
    """An empty, new file `.<stem>.<random><suffix>` beside `path`, with the mode the umask gives new files (not
    `mkstemp`'s 0600: a run folder shared by a team stays readable)."""
    while True:
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def check_writable(path: str | Path) -> None:
    """Fail now, naming `path`, when a file or folder cannot be written there (before a long job that would write
    it at the end): its folder is created if needed and a probe file is written in it and removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _new_temporary(path, ".probe").unlink()
    except OSError as error:
        raise OSError(f"{path}: cannot write here ({error.strerror or error})") from None


def remove_temporaries(path: str | Path) -> list[Path]:
    """Delete what an interrupted `atomic_write` of `path` left beside it (`.<stem>.*<suffix>`); returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    leftovers = sorted(path.parent.glob(f".{path.stem}.*{path.suffix}"))
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str | None = None) -> None:
    """Call `write(tmp_path)` on a temporary file in the target's folder, then atomically replace `path`.
    `suffix`: the temporary file's ending when the writer insists on one (default: the target's)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path, suffix or path.suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_user_text(path: str | Path) -> str:
    """A text file a user or another tool wrote: UTF-8, with a leading byte-order mark dropped (Windows editors
    write one; read as plain UTF-8 it would become part of the first name or path). Other encodings are an error
    naming the file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None


def read_json(path: str | Path, what: str) -> object:
    """Parse a JSON file; a missing file or invalid JSON raises an error naming the file (`what` says which)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return json.loads(read_user_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
