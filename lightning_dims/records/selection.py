"""Which records a report may pool, and why every other one is left out.

A report compares runs that differ only in the grid: dataset and class pair, training size N,
architecture and seed (:data:`GRID_KEYS`, plus keys the user names with ``vary``). Every other
setting (epochs, image size, callbacks, learning rate under ``--preset none``, ...) is the
*protocol*, and runs of different protocols are never pooled silently: :func:`select_records`
refuses, naming the keys that differ, unless one protocol is chosen (``protocol=HASH``).
Values that the paper preset derives from the architecture or dataset (its learning rate and
batch size) and the hardware-derived precision are part of the grid point, not the protocol,
when the record says they were derived (``config_derived``).

Also left out, each with its reason: unreadable files, records superseded by a newer record of
the same run id, smoke tests (status ``smoke``: ``fast_dev_run``, ``limit_*_batches``), and runs that
did not finish. ``strict=True`` turns any of these into an error.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lightning_dims.errors import LightningDimsError
from lightning_dims.records.schema import ResultsRecord, RunStatus, smoke_settings
from lightning_dims.records.store import RecordScan, latest_per_run, scan_records
from lightning_dims.utils import canonical_json, digest

__all__ = [
    "GRID_KEYS",
    "RecordSelectionError",
    "Selection",
    "describe_difference",
    "protocol_hash",
    "protocol_of",
    "select_records",
]

GRID_KEYS = frozenset(
    {
        "data.name",
        "data.classes",
        "data.train_size",
        "data.seed",
        "data.dataset_options",
        "data.fingerprint",
        "model.arch",
        "seed_everything",
    }
)
"""Config keys a grid varies; runs that differ only in these (and derived values) may be pooled."""


class RecordSelectionError(LightningDimsError, ValueError):
    """The records cannot be pooled as asked (mixed protocols, or a skip under ``strict``)."""


@dataclass
class Selection:
    """The records a report uses, the ones it skipped (``(where, why)``) and the protocol they share."""

    used: list[ResultsRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    read: int = 0
    protocol: str | None = None

    def summary(self) -> str:
        """``read R records: used U, skipped S (k unreadable, ...)``."""
        reasons = Counter(why.split(":", 1)[0] for _, why in self.skipped)
        detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        return f"read {self.read} records: used {len(self.used)}, skipped {len(self.skipped)}" + (
            f" ({detail})" if detail else ""
        )


def protocol_of(record: ResultsRecord, vary: Iterable[str] = ()) -> dict:
    """The record's config minus grid keys (and keys below them, ``data.dataset_options.d``), ``vary``
    keys, and values derived from its grid point."""
    ignored = GRID_KEYS | set(vary) | set(record.config_derived)
    return {
        key: value
        for key, value in sorted(record.config.items())
        if key not in ignored and not any(key.startswith(f"{grid}.") for grid in ignored)
    }


def protocol_hash(protocol: dict) -> str:
    return digest(canonical_json(protocol, compact=False), 12)


def describe_difference(reference: dict, other: dict, limit: int = 5) -> str:
    keys = sorted(key for key in set(reference) | set(other) if reference.get(key, "<unset>") != other.get(key, "<unset>"))
    shown = [f"{key}={json.dumps(other.get(key, '<unset>'), default=str)}" for key in keys[:limit]]
    return ", ".join(shown) + (f", +{len(keys) - limit} more" if len(keys) > limit else "")


def select_records(
    source: str | os.PathLike[str] | RecordScan,
    *,
    protocol: str | None = None,
    vary: Iterable[str] = (),
    strict: bool = False,
) -> Selection:
    """The finished records that one report may pool (module docstring), from a folder (scanned
    recursively) or from records already read (a :class:`RecordScan`, e.g. from W&B)."""
    vary = tuple(vary)
    scan = source if isinstance(source, RecordScan) else scan_records(source)
    selection = Selection(read=len(scan.records) + len(scan.unreadable) + len(scan.missing))
    selection.skipped += [(str(path), f"unreadable: {reason}") for path, reason in scan.unreadable]
    selection.skipped += scan.missing
    kept, superseded = latest_per_run(scan.records)
    newest = {record.run_id: path for path, record in kept}
    selection.skipped += [
        (str(path), f"superseded: a newer record of run {record.run_id} is {newest[record.run_id]}")
        for path, record in superseded
    ]
    finished = []
    for path, record in kept:
        if record.status == RunStatus.SMOKE:
            shown = ", ".join(smoke_settings(record.config)) or "a smoke-test setting"
            selection.skipped.append((str(path), f"smoke test: {shown}; its numbers are not a result"))
        elif record.status != RunStatus.FINISHED:
            selection.skipped.append((str(path), f"not finished: status {record.status}"))
        else:
            finished.append((path, record))
    groups: dict[str, list[tuple[Path, ResultsRecord]]] = {}
    protocols: dict[str, dict] = {}
    for path, record in finished:
        view = protocol_of(record, vary)
        key = protocol_hash(view)
        protocols[key] = view
        groups.setdefault(key, []).append((path, record))
    if protocol is not None:
        if protocol not in groups:
            raise RecordSelectionError(
                f"no finished record has protocol {protocol}; the records hold: {', '.join(sorted(groups)) or 'none'}"
            )
        chosen = protocol
    elif len(groups) > 1:
        ranked = sorted(groups, key=lambda key: -len(groups[key]))
        reference = protocols[ranked[0]]
        lines = [f"{ranked[0]} ({len(groups[ranked[0]])} runs)"] + [
            f"{key} ({len(groups[key])} runs; {describe_difference(reference, protocols[key])})" for key in ranked[1:]
        ]
        raise RecordSelectionError(
            f"the records mix {len(groups)} protocols (settings beyond dataset, N, arch and seed differ): "
            + "; ".join(lines)
            + ". Choose one with --protocol HASH, or declare a varied setting with --vary KEY"
        )
    else:
        chosen = next(iter(groups), None)
    for key, members in groups.items():
        if key == chosen:
            selection.used += [record for _, record in members]
        else:
            selection.skipped += [(str(path), f"other protocol: {key}, not {chosen}") for path, _ in members]
    selection.protocol = chosen
    if strict and selection.skipped:
        where, why = selection.skipped[0]
        raise RecordSelectionError(f"--strict: {len(selection.skipped)} records skipped, first {where}: {why}")
    return selection
