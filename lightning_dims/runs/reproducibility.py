"""A resumed run ends with the numbers of an uninterrupted one: per-epoch seeds and stamped checkpoints.

Why per-epoch seeds: a run resumes from ``last.ckpt``, written at the end of its last finished
epoch. Anything random in the next epoch (dropout, the shuffling order, augmentation) must then
come out as it would have without the interruption. Saving the random states in the checkpoint
is not enough, because other work between the checkpoint and the next epoch (validation loaders,
d_repr measurements) draws from the same generators. Instead every training epoch starts from
generators seeded by ``(seed, epoch)`` alone (:class:`EpochSeeding`), and the training sampler's
order is a function of ``(seed, epoch)`` too
(:class:`~lightning_dims.data.datamodule.EpochShuffleSampler`).

:class:`CheckpointStamp` writes the run's ``config_hash`` and config into every checkpoint, so a
resume can tell whether it is the same run (:func:`checkpoint_identity`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from lightning_dims.seeds import epoch_seed

__all__ = ["STAMP_KEY", "CheckpointStamp", "EpochSeeding", "checkpoint_identity"]

STAMP_KEY = "lightning_dims"


class EpochSeeding(Callback):
    """Seeds Python's, numpy's and torch's (every device's) generators at the start of each training epoch.

    Args:
        seed: the run's seed (``seed_everything``); epoch ``e`` starts from ``epoch_seed(seed, e, 1)``
            on every rank, as Lightning's ``seed_everything`` seeds all ranks alike.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    @override
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        value = epoch_seed(self.seed, trainer.current_epoch, stream=1)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)  # also seeds every CUDA device


class CheckpointStamp(Callback):
    """Writes ``{"config_hash", "config", "run_id"}`` under ``checkpoint["lightning_dims"]``."""

    def __init__(self, run_id: str, config_hash: str, config: dict[str, Any]):
        self.stamp = {"run_id": run_id, "config_hash": config_hash, "config": dict(config)}

    @override
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[STAMP_KEY] = self.stamp


def checkpoint_identity(path: str | Path) -> dict[str, Any] | None:
    """The stamp of a checkpoint (memory-mapped: cheap even for VGG), None for a checkpoint without one."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    stamp = checkpoint.get(STAMP_KEY)
    return dict(stamp) if isinstance(stamp, dict) else None
