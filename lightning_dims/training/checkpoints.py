"""The checkpoints every ``fit`` run writes unless its config brings its own ``ModelCheckpoint``."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_dims.runs.folder import RunFolder

__all__ = ["default_checkpoints"]


def default_checkpoints(folder: RunFolder, has_val_set: bool) -> list[ModelCheckpoint]:
    """``last.ckpt`` at the end of every training epoch, and the best-val-loss checkpoint when there is a val set.

    ``last`` is its own callback because Lightning writes ``save_last`` only when a top-k
    checkpoint is saved (when val loss improves); resuming and the paper (which keeps the last
    epoch) need every epoch's final weights. It is written at the end of the training epoch,
    after the epoch's validation and measurements, so a resume repeats none of them. Its file is
    :attr:`RunFolder.last_checkpoint <lightning_dims.runs.folder.RunFolder.last_checkpoint>`.
    """
    last = ModelCheckpoint(
        dirpath=folder.last_checkpoint.parent, filename=folder.last_checkpoint.stem, monitor=None, save_top_k=1,
        enable_version_counter=False, save_on_train_epoch_end=True,
    )  # fmt: skip
    if not has_val_set:
        return [last]
    best = ModelCheckpoint(
        dirpath=folder.checkpoints,
        filename="best-epoch{epoch:03d}-val_loss{val/loss:.4f}",
        monitor="val/loss",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    return [best, last]  # trainer.checkpoint_callback (the first) is the one ckpt_path="best" uses
