"""Record files: written atomically and never over a finished one; read back one record per run id.

``<folder>/<run_id>.record.json`` is written through a temporary file in the same folder (flushed,
fsynced, then hard-linked or renamed into place: :mod:`lightning_dims.utils`), so a reader sees the
old file or the new one, never half of one. A finished record is never replaced
(:class:`RecordExistsError`); a failed or interrupted one is replaced by a later attempt of the
same run; an unreadable one (truncated, not JSON, not a valid record) is moved aside to
``<name>.corrupt`` with a warning naming it, so its run can be re-run instead of being mistaken for
finished.

Reading: :func:`scan_records` reads every ``*.record.json`` below a folder and reports unreadable
files with the reason; :func:`latest_per_run` keeps one record per run id (the newest finished,
else the newest) so old ``<run_id>.vN.record.json`` copies written by earlier versions count once.
"""

from __future__ import annotations

import enum
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from lightning_dims.errors import LightningDimsError
from lightning_dims.records.schema import COMPLETE_STATUSES, RECORD_SUFFIX, ResultsRecord
from lightning_dims.utils import atomic_write, publish_new

__all__ = [
    "CORRUPT_SUFFIX",
    "CorruptRecordWarning",
    "RecordExistsError",
    "RecordScan",
    "RecordState",
    "inspect_record",
    "is_finished",
    "latest_per_run",
    "move_aside",
    "read_record",
    "read_records",
    "record_path",
    "scan_records",
    "write_record",
]

CORRUPT_SUFFIX = ".corrupt"


class RecordExistsError(LightningDimsError, FileExistsError):
    """A finished record is already at the path a new record was to be written to."""


class CorruptRecordWarning(UserWarning):
    """An unreadable record was moved aside; its run counts as not finished."""


class RecordState(str, enum.Enum):
    ABSENT = "absent"
    FINISHED = "finished"  # ran to its end: status finished or smoke (never run again)
    UNFINISHED = "unfinished"  # failed or interrupted: a later attempt may replace it
    CORRUPT = "corrupt"


def record_path(folder: str | os.PathLike[str], run_id: str) -> Path:
    """Where the record of ``run_id`` goes in ``folder``: ``<folder>/<run_id>.record.json``."""
    return Path(folder) / f"{run_id}{RECORD_SUFFIX}"


def read_record(path: str | os.PathLike[str]) -> ResultsRecord:
    """One record file; ``ValueError`` naming the file if it is not a valid record."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a valid results record: not UTF-8 text") from None
    try:
        return ResultsRecord.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ValueError(f"{path} is not a valid results record ({where}: {first['msg']})") from None


def inspect_record(path: str | os.PathLike[str]) -> tuple[RecordState, ResultsRecord | None, str | None]:
    """``(state, record, why unreadable)`` of the record file at ``path``."""
    path = Path(path)
    if not path.exists():
        return RecordState.ABSENT, None, None
    try:
        record = read_record(path)
    except (OSError, ValueError) as error:
        return RecordState.CORRUPT, None, str(error)
    state = RecordState.FINISHED if record.status in COMPLETE_STATUSES else RecordState.UNFINISHED
    return state, record, None


def is_finished(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a readable, finished record."""
    return inspect_record(path)[0] is RecordState.FINISHED


def move_aside(path: str | os.PathLike[str], reason: str | None = None) -> Path:
    """Rename an unreadable record to ``<name>.corrupt`` (``.corrupt.2``, ... if taken), warning with both names."""
    path = Path(path)
    target, n = path.with_name(path.name + CORRUPT_SUFFIX), 1
    while True:
        try:
            os.link(path, target)  # never clobbers an earlier .corrupt file
        except FileExistsError:
            n += 1
            target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}.{n}")
            continue
        except FileNotFoundError:
            return target  # another process moved it first
        break
    path.unlink(missing_ok=True)
    warnings.warn(
        f"unreadable results record {path} moved aside to {target.name}"
        + (f" ({reason})" if reason else "")
        + "; its run counts as not finished and will be re-run",
        CorruptRecordWarning,
        stacklevel=2,
    )
    return target


def write_record(path: str | os.PathLike[str], record: ResultsRecord) -> Path:
    """Write ``record`` to ``path`` atomically and return ``path``.

    A finished record already there raises :class:`RecordExistsError` (nothing is overwritten); an
    unfinished one is replaced; an unreadable one is moved aside first (:func:`move_aside`).
    """
    target = Path(path)
    text = record.model_dump_json(indent=2) + "\n"
    while True:
        state, _, reason = inspect_record(target)
        if state is RecordState.FINISHED:
            raise RecordExistsError(
                f"a finished results record already exists at {target}; use another run id "
                "(--run_id) or move the old record away"
            )
        if state is RecordState.CORRUPT:
            move_aside(target, reason)
            continue
        if state is RecordState.UNFINISHED:
            return atomic_write(target, text)
        try:
            if publish_new(target, text):  # atomic, and never clobbers a record that appeared meanwhile
                return target
        except OSError:  # filesystems without hard links
            return atomic_write(target, text)


@dataclass
class RecordScan:
    """What a scan found: readable records (with their files), unreadable files, and places without a record.

    ``missing`` is ``(where, why)`` for sources that hold no record to read, e.g. a W&B run that is
    still running (:mod:`~lightning_dims.tracking.source`); a folder scan leaves it empty.
    """

    records: list[tuple[Path, ResultsRecord]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)


def scan_records(folder: str | os.PathLike[str]) -> RecordScan:
    """Every ``*.record.json`` below ``folder`` (recursively), read; unreadable files listed with why."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    scan = RecordScan()
    for path in sorted(root.rglob(f"*{RECORD_SUFFIX}")):
        try:
            scan.records.append((path, read_record(path)))
        except (OSError, ValueError) as error:
            scan.unreadable.append((path, str(error)))
    return scan


def _recency(record: ResultsRecord) -> tuple:
    return (record.status in COMPLETE_STATUSES, record.finished_at or "", len(record.attempts))


def latest_per_run(records: Iterable[tuple[Path, ResultsRecord]]) -> tuple[list[tuple[Path, ResultsRecord]], list[tuple[Path, ResultsRecord]]]:
    """``(kept, superseded)``: one record per run id (the newest finished, else the newest), and the others."""
    best: dict[str, tuple[Path, ResultsRecord]] = {}
    superseded = []
    for path, record in records:
        current = best.get(record.run_id)
        if current is None or _recency(record) > _recency(current[1]):
            if current is not None:
                superseded.append(current)
            best[record.run_id] = (path, record)
        else:
            superseded.append((path, record))
    kept = sorted(best.values(), key=lambda item: item[1].run_id)
    return kept, superseded


def read_records(folder: str | os.PathLike[str]) -> list[ResultsRecord]:
    """One record per run id below ``folder``, sorted by run id; an unreadable file is a ``ValueError`` naming it."""
    scan = scan_records(folder)
    if scan.unreadable:
        path, reason = scan.unreadable[0]
        raise ValueError(reason if str(path) in reason else f"{path}: {reason}")
    kept, _ = latest_per_run(scan.records)
    return [record for _, record in kept]
