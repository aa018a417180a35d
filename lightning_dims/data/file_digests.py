"""Content digests of image files, memoised so a re-run over 50,000 files costs one ``stat`` each.

The identity of a file dataset (and so every cached K_F / d_data and every ``config_hash``) must
change when a pixel changes, not only when a file is renamed. :func:`files_digest` hashes the
bytes of each file (SHA-256) once and remembers the digest under the file's path, size, mtime,
ctime and inode in ``<cache>/file-digests/<root hash>.json``; a file whose ``stat`` still matches
is not read again. The memo is rewritten atomically (:func:`~lightning_dims.utils.atomic_open`),
so concurrent runs at worst recompute a digest, never read a torn memo.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from lightning_dims.data import property_cache
from lightning_dims.utils import atomic_open, digest, file_digest

__all__ = ["MEMO_FORMAT", "files_digest"]

MEMO_FORMAT = 1


def _stat_key(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _memo_path(root: Path) -> Path:
    name = digest(str(root), 24)
    return property_cache.cache_dir() / "file-digests" / f"{name}.json"


def _load_memo(path: Path) -> dict:
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return memo.get("files", {}) if memo.get("format") == MEMO_FORMAT else {}


def _store_memo(path: Path, files: dict) -> None:
    try:
        with atomic_open(path, fsync=False) as stream:
            json.dump({"format": MEMO_FORMAT, "files": files}, stream)
    except OSError:  # a read-only cache only costs the re-hashing
        pass


def files_digest(paths: Sequence[str | os.PathLike[str]]) -> str:
    """One hex SHA-256 over ``(path relative to their common folder, content digest)`` of every file, in order."""
    resolved = [Path(path).resolve() for path in paths]
    if not resolved:
        return digest(b"")
    root = Path(os.path.commonpath([str(path.parent) for path in resolved]))
    memo_path = _memo_path(root)
    memo = _load_memo(memo_path)
    changed = False
    lines = []
    for path in resolved:
        relative = str(path.relative_to(root))
        key = _stat_key(path.stat())
        entry = memo.get(relative)
        if entry is None or entry[:4] != key:
            entry = [*key, file_digest(path)]
            memo[relative] = entry
            changed = True
        lines.append(f"{relative}\t{entry[4]}\n")
    if changed:
        _store_memo(memo_path, memo)
    return digest(lines)
