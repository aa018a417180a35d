"""Where a callback finds its data, which samples it evaluates, and how the work is split across DDP ranks.

The measuring callbacks do not piggyback on Lightning's own loaders: under DDP those are wrapped
in a ``DistributedSampler`` that pads the last shard with repeated samples (exact duplicates
would bias d_repr and double-count attacked samples). Instead a callback fixes a seeded subset
of the dataset once (:func:`fixed_subset`), each rank evaluates the positions
``rank, rank + W, rank + 2W, ...`` of it (:func:`rank_shard`), and the per-rank results are
gathered back into the subset's order (:func:`gather_rows`) or summed. Every sample is used
exactly once, whatever the number of ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torch.utils.data import DataLoader

from lightning_dims.compat import stage_data_source
from lightning_dims.network.sampling import evaluation_mode, fixed_subset, on_device, subset_loader

__all__ = [
    "STAGES",
    "evaluation_mode",
    "find_loader",
    "first_batch",
    "fixed_subset",
    "gather_rows",
    "on_strategy_device",
    "rank_shard",
    "subset_loader",
    "sum_across_ranks",
]

STAGES = ("train", "val", "test")


def rank_shard(indices: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The positions ``rank, rank + world_size, ...`` of ``indices``: this rank's share, no padding."""
    if len(indices) < world_size:
        raise ValueError(
            f"{len(indices)} samples cannot be split over {world_size} ranks: raise the sample cap or use fewer devices"
        )
    return indices[rank::world_size]


def gather_rows(trainer: pl.Trainer, rows: torch.Tensor) -> torch.Tensor:
    """Gather each rank's ``(n_rank, D)`` rows of its :func:`rank_shard` share into ``(N, D)``, subset order.

    Every rank receives the full result. Rows are moved to the strategy's device for the collective
    (NCCL needs CUDA tensors) and come back on that device.
    """
    world_size = trainer.world_size
    if world_size == 1:
        return rows
    strategy = trainer.strategy
    device = strategy.root_device
    rows = rows.to(device)
    counts = strategy.all_gather(torch.tensor([rows.shape[0]], device=device)).reshape(world_size).tolist()
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    gathered = strategy.all_gather(padded)  # (world_size, max_count, D)
    total = sum(counts)
    out = rows.new_empty((total, *rows.shape[1:]))
    for rank, count in enumerate(counts):
        out[rank::world_size] = gathered[rank, :count]
    return out


def sum_across_ranks(trainer: pl.Trainer, values: torch.Tensor) -> torch.Tensor:
    """Elementwise sum of ``values`` over all ranks (identity on one device); float64 in, float64 out."""
    if trainer.world_size == 1:
        return values
    device = trainer.strategy.root_device
    return trainer.strategy.reduce(values.to(device), reduce_op="sum").to(values.device)


STAGE_FIX = {
    "train": "pass train_dataloaders to trainer.fit",
    "val": "pass val_dataloaders to trainer.fit (or dataloaders to trainer.validate)",
    "test": "define test_dataloader() on the LightningModule (in trainer.test, its loaders serve too)",
}
"""Besides ``dataloader=`` and a datamodule, how a stage's loader can reach a callback (test loaders are not
an argument of ``trainer.fit``, and the callbacks measure at the end of fit)."""


def find_loader(trainer: pl.Trainer, stage: str, dataloader: DataLoader | None = None, owner: str = "the callback") -> DataLoader:
    """The loader of ``stage`` (train/val/test) a callback measures on, wherever it is:

    1. ``dataloader``, the callback's own argument;
    2. the datamodule's ``<stage>_dataloader()`` (a fresh loader, not wrapped for DDP);
    3. the loaders passed to ``trainer.fit``/``validate``/``test`` for the stage (``test``: those of a
       ``trainer.test`` that ran or runs; the test stage is no argument of ``trainer.fit``);
    4. the LightningModule's ``<stage>_dataloader()``.

    Only the loader's dataset, collate function and workers are used (:func:`subset_loader`).
    A sequence or dict of loaders gives its first. Raises ``ValueError`` naming what works.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown data source {stage!r}; choose one of {list(STAGES)}")
    hook = f"{stage}_dataloader"
    loader = dataloader
    if loader is None and trainer.datamodule is not None and is_overridden(hook, trainer.datamodule):
        loader = getattr(trainer.datamodule, hook)()
    if loader is None:
        source = stage_data_source(trainer, stage)
        if isinstance(source, (pl.LightningModule, pl.LightningDataModule)):
            loader = getattr(source, hook)() if is_overridden(hook, source) else None
        else:
            loader = source
    if loader is None and trainer.lightning_module is not None and is_overridden(hook, trainer.lightning_module):
        loader = getattr(trainer.lightning_module, hook)()
    if isinstance(loader, Sequence) and not isinstance(loader, DataLoader) and loader:
        loader = loader[0]
    if isinstance(loader, Mapping) and loader:
        loader = next(iter(loader.values()))
    if not isinstance(loader, DataLoader):
        found = "" if loader is None else f" (found {type(loader).__name__}, not a torch DataLoader)"
        raise ValueError(
            f"no {stage} dataloader for {owner} to measure on{found}: pass dataloader=<a DataLoader> to it, give the "
            f"Trainer a datamodule with {hook}(), or {STAGE_FIX[stage]}"
        )
    return loader


def first_batch(loader: DataLoader, n: int = 2) -> object:
    """The batch of the first ``n`` samples of ``loader``'s dataset, as its collate function makes it.

    Read without touching the global random stream (a DataLoader iterator draws its base seed from
    it), so checking the data at setup does not change the training that follows.
    """
    with torch.random.fork_rng(devices=[]):
        return next(iter(subset_loader(loader, torch.arange(min(len(loader.dataset), n)))))


@contextmanager
def on_strategy_device(trainer: pl.Trainer, module: nn.Module) -> Iterator[torch.device]:
    """Move ``module`` to the strategy's device for the block, and back to where it was after.

    Needed in ``on_fit_end``: Lightning's teardown has moved the module to the CPU by then.
    """
    with on_device(module, trainer.strategy.root_device) as device:
        yield device
