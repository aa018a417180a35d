"""Results records read back from W&B: the ``results_record.json`` every run saves into its W&B run.

``ENTITY/PROJECT`` takes every run of the project, ``ENTITY/PROJECT/SWEEP_ID`` the runs of one
sweep. Through W&B's public API (``wandb.Api``), and only the part of it used here::

    api.runs("ENTITY/PROJECT", filters={"sweep": SWEEP_ID})  -> runs with .id and .state
    run.files(names=["results_record.json"])                  -> files with .name
    file.download(root=FOLDER, replace=True)                   -> FOLDER/results_record.json

Runs whose W&B state is not ``finished`` (running, crashed, ...) are listed as skipped without
downloading anything; a finished run without a record file too (not a lightning-dims run, or one
that ended before its record). Each record lands in ``<folder>/<run id>.record.json``
(downloaded into a temporary folder, then written atomically, so no half file is ever left there;
the folder is then a results folder like any other), and the result is a :class:`~lightning_dims.records.store.RecordScan` that
:func:`~lightning_dims.records.selection.select_records` pools like a folder's records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lightning_dims.errors import UsageError
from lightning_dims.records.schema import WANDB_RECORD_FILE
from lightning_dims.records.store import RecordScan, read_record, record_path
from lightning_dims.utils import atomic_write

__all__ = ["download_record", "parse_wandb_path", "wandb_api", "wandb_records"]


def parse_wandb_path(path: str) -> tuple[str, str, str | None]:
    """``(entity, project, sweep id or None)`` of ``ENTITY/PROJECT[/SWEEP_ID]``; ``UsageError`` otherwise."""
    parts = path.strip().strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--from-wandb takes ENTITY/PROJECT or ENTITY/PROJECT/SWEEP_ID, got {path!r}")
    entity, project, *sweep = parts
    return entity, project, (sweep[0] if sweep else None)


def wandb_api() -> Any:
    """``wandb.Api()``, or a ``UsageError`` saying how to log in."""
    import wandb

    try:
        return wandb.Api()
    except Exception as error:  # no API key, unreachable server
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(
            f"cannot use the W&B API ({reason}); log in with `wandb login` (or set WANDB_API_KEY), "
            "or report from a folder with --results DIR"
        ) from None


def download_record(file: Any, target: Path) -> Path:
    """``file`` (a W&B run file) saved as ``target``, replacing an older copy only once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        file.download(root=str(staging), replace=True).close()
        return atomic_write(target, (staging / file.name).read_bytes(), fsync=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def wandb_records(path: str, folder: str | os.PathLike[str], api: Any = None) -> RecordScan:
    """The results records of the runs at ``path`` (``ENTITY/PROJECT[/SWEEP_ID]``), downloaded below ``folder``.

    ``api`` is a ``wandb.Api`` (default: a new one). A run's record is read with the same checks as
    a folder's; a run with no record to read goes to ``missing`` with the reason.
    """
    entity, project, sweep = parse_wandb_path(path)
    api = wandb_api() if api is None else api
    filters = {"sweep": sweep} if sweep else {}
    scan = RecordScan()
    try:
        runs = list(api.runs(f"{entity}/{project}", filters=filters))
    except Exception as error:  # unknown project or sweep, no access, no answer
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(f"cannot list the W&B runs of {path}: {reason}") from None
    if not runs:
        scope = f"sweep {sweep} of {entity}/{project}" if sweep else f"{entity}/{project}"
        raise UsageError(f"W&B holds no runs in {scope}: check the entity, project and sweep id")
    for run in runs:
        where = f"{entity}/{project}/{run.id}"
        if run.state != "finished":
            scan.missing.append((where, f"not finished: W&B state {run.state}"))
            continue
        files = [file for file in run.files(names=[WANDB_RECORD_FILE]) if file.name == WANDB_RECORD_FILE]
        if not files:
            scan.missing.append((where, f"no record: the W&B run has no {WANDB_RECORD_FILE}"))
            continue
        local = download_record(files[0], record_path(folder, run.id))
        try:
            scan.records.append((local, read_record(local)))
        except (OSError, ValueError) as error:
            scan.unreadable.append((local, f"{error} (from {where})"))
    return scan
