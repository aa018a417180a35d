"""Small utilities every layer uses: atomic file writes, canonical JSON and its digests, dict flattening, a str Enum.

The bottom of the house: the standard library only, so ``properties/``, ``data/``, ``records/`` and
everything above may import it.

Atomic writes. A file another process may read while it is written (results records, property-cache
entries, claims, prepared images, reports) is first written whole to a temporary file in the same
folder, named ``.<name>.<pid>-<8 random hex>.tmp`` (:func:`temporary_path`, the one temp-name
scheme; :data:`TEMPORARY_GLOB` finds the ones a killed process left), created exclusively so no two
writers share one. It is flushed, by default fsynced, then moved into place in one step: renamed
over the target (``os.replace``: :func:`atomic_write`, :func:`atomic_open`) or hard-linked to the
target's name (``os.link``, which fails when the name exists: :func:`publish_new`). A reader sees
the old file or the new one, never half of one; the temporary file is removed on any failure.
With ``fsync=True`` the folder is fsynced after the move too, so the new name survives a power cut;
writers of files that are cheap to remake (property-cache entries, the file-digest memo, prepared
images, downloaded record copies, claims) pass ``fsync=False``, as they never fsynced before.

Digests. :func:`canonical_json` is the one JSON text of a value that identities are computed from
(keys sorted, ASCII). Its compact form (separators ``,`` and ``:``) spells ``config_hash``, short
launcher hashes and property-cache fingerprints; its spaced form (json's default ``, `` and
``: ``) spells sweep run ids, command identities and protocol hashes. Both stay as they are: a
different spelling would change every stored run id and hash. :func:`digest` is the hex SHA-256
(or another ``hashlib`` algorithm) of text or bytes, cut to ``length`` hex digits; 16 hex digits
are 64 bits, so a collision among a million identities has odds of about 3e-8.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TEMPORARY_GLOB",
    "TEMPORARY_SUFFIX",
    "StrEnum",
    "atomic_open",
    "atomic_write",
    "canonical_json",
    "digest",
    "file_digest",
    "flatten",
    "fsync_folder",
    "publish_new",
    "temporary_path",
]

TEMPORARY_SUFFIX = ".tmp"
TEMPORARY_GLOB = f".*{TEMPORARY_SUFFIX}"
"""Matches every temporary file of :func:`temporary_path` (and no file that is not hidden)."""


# ---- atomic writes ------------------------------------------------------------------------------


def temporary_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>-<8 random hex>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush ``folder``'s entries (a rename or link in it) to disk; silently skipped where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


@contextmanager
def _temporary_file(target: Path, mode: str, fsync: bool) -> Iterator[tuple[IO, Path]]:
    """An exclusively created temporary file beside ``target`` (parents made); removed if the block raises."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic writes open files with mode 'w' or 'wb', not {mode!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        with open(temporary, mode.replace("w", "x"), encoding=None if "b" in mode else "utf-8") as handle:
            yield handle, temporary
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, fsync: bool = True) -> Iterator[IO]:
    """A file to stream the new content of ``path`` into (``json.dump``, ``np.save``, ``Image.save``).

    When the block ends without an exception the content replaces ``path`` in one rename; when it
    raises, ``path`` keeps its old content (or stays absent) and the temporary file is deleted.
    ``mode``: ``"w"`` (UTF-8 text) or ``"wb"``. Parent folders are created.

    Example::

        with atomic_open(path) as stream:
            json.dump(record, stream)
    """
    target = Path(path)
    with _temporary_file(target, mode, fsync) as (handle, temporary):
        yield handle
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_folder(target.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = True) -> Path:
    """Replace ``path``'s content by ``data`` (text as UTF-8) in one rename; returns ``path``. See :func:`atomic_open`."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", fsync=fsync) as handle:
        handle.write(data)
    return Path(path)


def publish_new(path: str | os.PathLike[str], data: bytes | str, *, fsync: bool = True) -> bool:
    """Create ``path`` holding ``data`` only if nothing is there; True when created, False when a file exists.

    The content is written whole to a temporary file and hard-linked to ``path``: the link fails
    when the name exists, so the file appears complete or not at all, and a file another process
    created meanwhile is never overwritten. Raises ``OSError`` on filesystems without hard links.
    """
    target = Path(path)
    with _temporary_file(target, "wb" if isinstance(data, bytes) else "w", fsync) as (handle, temporary):
        handle.write(data)
    try:
        os.link(temporary, target)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    if fsync:
        fsync_folder(target.parent)
    return True


# ---- canonical JSON and digests -----------------------------------------------------------------


def canonical_json(value: Any, *, compact: bool = True, strict: bool = False) -> str:
    """The JSON text identities are computed from: keys sorted, non-ASCII escaped.

    ``compact``: separators ``,`` and ``:``; else json's default ``, `` and ``: ``. Values JSON cannot
    hold (paths, dates, objects) are written as ``str(value)``, unless ``strict`` (then ``TypeError``,
    for identities where a ``str`` could hide a difference).

    Example::

        canonical_json({"b": 1, "a": [1, 2]})                 # '{"a":[1,2],"b":1}'
        canonical_json({"b": 1, "a": [1, 2]}, compact=False)  # '{"a": [1, 2], "b": 1}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":") if compact else None, default=None if strict else str)


def digest(data: bytes | str | Iterable[bytes | str], length: int | None = None, *, algorithm: str = "sha256") -> str:
    """Hex digest of ``data`` (text as UTF-8; an iterable of chunks is hashed as their concatenation), cut to ``length`` hex digits."""
    hasher = hashlib.new(algorithm)
    for chunk in (data,) if isinstance(data, (bytes, str)) else data:
        hasher.update(chunk.encode() if isinstance(chunk, str) else chunk)
    return hasher.hexdigest()[:length]


def file_digest(path: str | os.PathLike[str], length: int | None = None) -> str:
    """Hex SHA-256 of the bytes of the file at ``path`` (read in chunks), cut to ``length`` hex digits."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:length]


# ---- mappings -----------------------------------------------------------------------------------


def flatten(
    mapping: Mapping[str, Any], prefix: str = "", sep: str = ".", *, keep: Callable[[Mapping], bool] | None = None
) -> dict[str, Any]:
    """Nested mappings as one level of keys joined by ``sep``: ``{"model": {"lr": 1e-3}}`` -> ``{"model.lr": 1e-3}``.

    Lists, ``None`` and other values stay values, as do empty mappings and the mappings for which
    ``keep(mapping)`` is true (e.g. a ``class_path``/``init_args`` spec kept whole). ``prefix`` is
    put before every key, joined by ``sep``.
    """
    return _flatten(mapping, f"{prefix}{sep}" if prefix else "", sep, keep)


def _flatten(mapping: Mapping[str, Any], lead: str, sep: str, keep: Callable[[Mapping], bool] | None) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value and not (keep is not None and keep(value)):
            flat.update(_flatten(value, f"{lead}{key}{sep}", sep, keep))
        else:
            flat[f"{lead}{key}"] = value
    return flat


# ---- lifecycle vocabularies ---------------------------------------------------------------------


class StrEnum(str, Enum):
    """A vocabulary of states whose members are their string values (``enum.StrEnum`` of Python 3.11, on 3.10).

    ``str()`` and f-strings give the value (``f"{RunStatus.FINISHED}"`` is ``finished`` on every
    Python, where a plain ``(str, Enum)`` prints ``RunStatus.FINISHED`` on some), JSON writes the
    value, and a member equals its string: records and printed lines stay as they were.
    """

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
