"""Sending callback results to the trainer's loggers (W&B extras: :mod:`lightning_dims.tracking.summary`).

The callbacks log through ``trainer.loggers`` directly (not ``LightningModule.log``) because they
report from hooks where Lightning forbids ``self.log`` (``on_train_end``, ``on_fit_start``,
``on_fit_end``). Logger methods are rank-zero-only, so calling them on every rank is safe.
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning.pytorch as pl

__all__ = ["log_hyperparams", "log_metrics"]


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
