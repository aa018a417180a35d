"""On-disk cache of dataset properties (K_F, d_data), keyed by a fingerprint of what they depend on.

A fingerprint is the SHA-256 of the canonical JSON of: dataset name and options, the source
signature, task classes, the exact training indices, the preprocessing spec and the estimator
options. Any change to one of them is a different entry; nothing is ever served stale. Entries
are JSON files ``<cache>/properties/<fingerprint>.json`` written atomically
(:func:`~lightning_dims.utils.atomic_open`: temp file + ``os.replace``), so concurrent runs (sweep
workers, DDP ranks) never read half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning_dims.utils import atomic_open, canonical_json, digest

__all__ = ["CACHE_ENV", "CACHE_FORMAT", "cache_dir", "entry_path", "fingerprint", "load_entry", "store_entry"]

CACHE_ENV = "LIGHTNING_DIMS_CACHE"
CACHE_FORMAT = 2
"""Bump when the cached record's meaning changes; old entries are then simply not found."""


def cache_dir() -> Path:
    """``$LIGHTNING_DIMS_CACHE`` or ``~/.cache/lightning-dims``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lightning-dims"


def fingerprint(payload: dict) -> str:
    """Hex SHA-256 of ``payload`` as canonical JSON (sorted keys, no whitespace)."""
    return digest(canonical_json({"cache_format": CACHE_FORMAT, **payload}, strict=True))


def entry_path(key: str) -> Path:
    return cache_dir() / "properties" / f"{key}.json"


def load_entry(key: str) -> dict | None:
    """The cached record for ``key``, or None (absent or unreadable entries count as absent)."""
    path = entry_path(key)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def store_entry(key: str, record: dict) -> Path:
    """Write ``record`` for ``key`` atomically; returns the entry's path."""
    path = entry_path(key)
    with atomic_open(path, fsync=False) as stream:  # a lost entry is measured again
        json.dump(record, stream, sort_keys=True)
    return path
