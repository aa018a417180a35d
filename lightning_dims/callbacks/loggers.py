"""Sending callback results to the trainer's loggers, with W&B extras when a WandbLogger is attached.

The callbacks log through ``trainer.loggers`` directly (not ``LightningModule.log``) because they
report from hooks where Lightning forbids ``self.log`` (``on_train_end``, ``on_fit_start``,
``on_fit_end``). Logger methods are rank-zero-only, so calling them on every rank is safe.
W&B is an extra: without a ``WandbLogger`` nothing W&B-specific happens, and a W&B failure is a
warning, never a failed run (design: "a run never fails because W&B is unreachable").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn


def log_metrics(trainer: pl.Trainer, metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log scalar ``metrics`` to every logger of ``trainer`` at ``step`` (default: the global step)."""
    if not metrics:
        return
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        logger.log_metrics(dict(metrics), step=step)


def log_hyperparams(trainer: pl.Trainer, params: Mapping[str, object]) -> None:
    """Add ``params`` to every logger's run configuration (W&B config, CSV/TensorBoard hparams)."""
    for logger in trainer.loggers:
        logger.log_hyperparams(dict(params))


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
