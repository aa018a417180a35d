"""A callback's results in the W&B run: summary values and tables, when a ``WandbLogger`` is attached.

The measuring callbacks log scalars to every logger (:mod:`lightning_dims.callbacks.loggers`); these
are the W&B extras. Without a ``WandbLogger`` nothing happens, and a W&B failure is a warning,
never a failed run (design: "a run never fails because W&B is unreachable").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["log_wandb_table", "update_wandb_summary", "wandb_loggers"]


def wandb_loggers(trainer: pl.Trainer) -> list:
    """The trainer's ``WandbLogger`` instances (empty when none is attached)."""
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def update_wandb_summary(trainer: pl.Trainer, values: Mapping[str, object]) -> None:
    """Write ``values`` into the W&B run summary (global rank 0 only; no-op without W&B)."""
    if trainer.global_rank != 0 or not values:
        return
    for logger in wandb_loggers(trainer):
        try:
            logger.experiment.summary.update(dict(values))
        except Exception as error:  # W&B must never fail a run; say what was lost
            rank_zero_warn(f"could not write {sorted(values)} to the W&B summary: {error}")


def log_wandb_table(
    trainer: pl.Trainer, key: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Log a ``wandb.Table`` under ``key`` (global rank 0 only; no-op without W&B)."""
    if trainer.global_rank != 0 or not rows:
        return
    for logger in wandb_loggers(trainer):
        try:
            logger.log_table(key=key, columns=list(columns), data=[list(row) for row in rows])
        except Exception as error:  # W&B must never fail a run; say what was lost
            rank_zero_warn(f"could not log the W&B table {key!r}: {error}")
