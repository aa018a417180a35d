"""A run's results record saved into its W&B run, so W&B holds every number the analysis reads.

The record file is copied into the W&B run's files folder as ``results_record.json``
(:data:`~lightning_dims.records.schema.WANDB_RECORD_FILE`) and saved with policy ``now``: an
online run uploads it at once, an offline run keeps the copy in ``<run>/wandb/offline-run-*/files/``
and ``wandb sync`` uploads it with the rest. A resumed W&B run replaces the earlier attempt's copy.
``lightning-dims report --from-wandb`` reads these files back (:mod:`lightning_dims.tracking.source`).

W&B problems are warnings, never a failed run (design: a run never fails because of W&B).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_warn

from lightning_dims.compat import started_wandb_run
from lightning_dims.records.schema import WANDB_RECORD_FILE
from lightning_dims.utils import atomic_write

__all__ = ["save_record_to_wandb"]


def save_record_to_wandb(loggers: Iterable, record_file: str | os.PathLike[str]) -> list[Path]:
    """Save ``record_file`` into the W&B run of every started ``WandbLogger`` in ``loggers``.

    Returns the copies made in the runs' files folders (empty without W&B, or when saving failed).
    """
    from lightning.pytorch.loggers import WandbLogger

    saved = []
    for logger in loggers:
        run = started_wandb_run(logger) if isinstance(logger, WandbLogger) else None
        if run is None:
            continue
        try:
            files = Path(run.dir)
            target = atomic_write(files / WANDB_RECORD_FILE, Path(record_file).read_bytes())  # W&B never sees half a record
            run.save(str(target), base_path=str(files), policy="now")
            saved.append(target)
        except Exception as error:  # W&B must never fail a run; the record on disk is intact
            rank_zero_warn(f"could not save the results record {record_file} to the W&B run: {error}")
    return saved
