"""Batch-norm statistics re-estimated from the training set at the end of every training epoch.

Why: a BatchNorm layer normalises with the current batch's statistics while training, but with
running averages (``momentum`` 0.1 per step, starting from mean 0 and variance 1) in eval mode,
which is how validation, test, FGSM and d_repr see the network. After few optimiser steps those
averages still hold the initial values and the statistics of weights long since updated, so the
eval-mode network is not the network that was trained. Measured on ``brain-tissue`` (ResNet-18,
32 px, N = 100, batch 32, 4 epochs = 16 steps): eval mode gives test accuracy 0.50 and loss 18.9
while the same weights with batch statistics give 0.88 and 0.40. Short CPU runs (tens of steps)
hit this; the paper's 100 epochs (thousands of steps) do not. Scaling the 0..255 inputs does not
cure it (0.61 in eval mode with inputs divided by 255): it is the lag of the running averages.

What: "precise BN" (``torch.optim.swa_utils.update_bn``): reset every BatchNorm layer's running
statistics and forward the whole training set once in train mode, without gradients, with a
cumulative average (``momentum=None``) over batches. Only the BatchNorm buffers change; weights,
optimiser state and the training random stream are untouched (the pass runs under
``torch.random.fork_rng``). The data, its preprocessing spec, K_F and FGSM eps are unchanged.

When: after the last training batch of every epoch, before Lightning's end-of-epoch validation,
so validation loss, the best-val checkpoint, ``last.ckpt``, d_repr, test and FGSM all use the
re-estimated statistics; and at the end of training if steps were taken since (``max_steps``).

Cost: one forward pass over the training set per epoch (about a third of an epoch's compute).
Under DDP every rank forwards the whole (unsharded) training set in the same order with the same
weights, so all ranks hold identical statistics without communication.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_dims.records.contributions import RecordContributor

__all__ = ["BatchNormRecalibration", "has_batchnorm", "training_images_loader"]

RECALIBRATION_BATCH_SIZE = 64
"""Images per forward pass of the recalibration (only memory depends on it, not the statistics' meaning)."""


def has_batchnorm(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


def training_images_loader(trainer: pl.Trainer) -> DataLoader:
    """The whole training set in a fixed order, single process: the datamodule's unshuffled train loader, else a
    copy of the trainer's train loader without its (shuffling or DDP-sharding) sampler."""
    datamodule = trainer.datamodule
    if callable(getattr(datamodule, "loader", None)):
        loader = datamodule.loader("train", shuffle=False)
        return DataLoader(loader.dataset, batch_size=RECALIBRATION_BATCH_SIZE, collate_fn=loader.collate_fn)
    loader = trainer.train_dataloader
    if not isinstance(loader, DataLoader):
        raise TypeError(
            "BatchNormRecalibration needs a torch DataLoader of (images, labels) for training; got "
            f"{type(loader).__name__}"
        )
    return DataLoader(loader.dataset, batch_size=RECALIBRATION_BATCH_SIZE, collate_fn=loader.collate_fn)


class BatchNormRecalibration(Callback, RecordContributor):
    """Re-estimate BatchNorm running statistics on the training set after every training epoch (see module docstring).

    A network without BatchNorm layers is left alone. The results record gets
    ``batchnorm_recalibration: {"passes": ..., "images": ...}`` (under ``extra``).

    Example::

        lightning-dims fit --config callbacks/fast.yaml \\
            '--trainer.callbacks+=lightning_dims.callbacks.BatchNormRecalibration' ...
    """

    def __init__(self) -> None:
        self.passes = 0
        self.images = 0
        self._calibrated_step: int | None = None

    def recalibrate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not has_batchnorm(pl_module) or self._calibrated_step == trainer.global_step:
            return
        loader = training_images_loader(trainer)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            update_bn(loader, pl_module, device=pl_module.device)
        self.passes += 1
        self.images = len(loader.dataset)
        self._calibrated_step = trainer.global_step

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            self.recalibrate(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recalibrate(trainer, pl_module)

    @override
    def state_dict(self) -> dict:
        return {"passes": self.passes, "images": self.images}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.passes = int(state_dict.get("passes", 0))
        self.images = int(state_dict.get("images", 0))

    def results_record_fields(self) -> dict:
        return {"batchnorm_recalibration": {"passes": self.passes, "images": self.images}}
