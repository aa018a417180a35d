"""Which samples a callback evaluates, and how the work is split across DDP ranks.

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
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

STAGES = ("train", "val", "test")


def fixed_subset(n: int, cap: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of ``min(n, cap)`` samples out of ``n``, drawn without replacement with ``seed``.

    ``cap=None`` (or ``cap >= n``) keeps all ``n`` in order. The same ``(n, cap, seed)`` always gives
    the same subset, so a quantity tracked over epochs is measured on the same samples.
    """
    if n < 1:
        raise ValueError("the dataset is empty: nothing to measure")
    if cap is not None and cap < 1:
        raise ValueError(f"the sample cap must be a positive number of samples, got {cap}")
    if cap is None or cap >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(n, generator=generator)[:cap]).values


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


def stage_loader(trainer: pl.Trainer, stage: str) -> DataLoader:
    """A fresh loader of ``stage`` (train/val/test) from the datamodule, or the trainer's own loader.

    The datamodule's ``<stage>_dataloader()`` is preferred: it has not been wrapped for DDP. Without
    a datamodule, the loader Lightning built for the stage is used (only its dataset is read).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown data source {stage!r}; choose one of {list(STAGES)}")
    datamodule = trainer.datamodule
    if datamodule is not None and callable(getattr(datamodule, f"{stage}_dataloader", None)):
        loader = getattr(datamodule, f"{stage}_dataloader")()
    else:
        attribute = {"train": "train_dataloader", "val": "val_dataloaders", "test": "test_dataloaders"}[stage]
        loader = getattr(trainer, attribute, None)
    if isinstance(loader, Sequence) and not isinstance(loader, DataLoader) and loader:
        loader = loader[0]
    if isinstance(loader, Mapping) and loader:
        loader = next(iter(loader.values()))
    if not isinstance(loader, DataLoader):
        raise ValueError(
            f"no {stage} dataloader to measure on: give the Trainer a datamodule with {stage}_dataloader() "
            f"(or pass {stage} loaders to trainer.fit)"
        )
    return loader


def subset_loader(
    loader: DataLoader, indices: torch.Tensor, batch_size: int | None = None
) -> DataLoader:
    """An unshuffled, undistributed loader over ``loader.dataset[indices]``, with ``loader``'s collate and workers."""
    dataset: Dataset = loader.dataset
    return DataLoader(
        Subset(dataset, indices.tolist()),
        batch_size=batch_size or loader.batch_size or 1,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


def batch_inputs(batch: object) -> torch.Tensor:
    """The input tensor of a batch: the batch itself, or the first element of an ``(x, y, ...)`` tuple."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise TypeError(
        f"cannot find the input tensor in a batch of type {type(batch).__name__}: "
        "the dataloader must yield x or (x, y, ...) with x a tensor"
    )


def batch_targets(batch: object) -> torch.Tensor:
    """The integer class labels of an ``(x, y, ...)`` batch."""
    if isinstance(batch, (list, tuple)) and len(batch) >= 2 and isinstance(batch[1], torch.Tensor):
        return batch[1]
    raise TypeError(
        f"cannot find the labels in a batch of type {type(batch).__name__}: "
        "the dataloader must yield (x, y, ...) with y a tensor of class indices"
    )


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode (BatchNorm running statistics, no dropout); restore each submodule's mode after."""
    modes = {sub: sub.training for sub in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for sub, training in modes.items():
            sub.train(training)


@contextmanager
def on_strategy_device(trainer: pl.Trainer, module: nn.Module) -> Iterator[torch.device]:
    """Move ``module`` to the strategy's device for the block, and back to where it was after.

    Needed in ``on_fit_end``: Lightning's teardown has moved the module to the CPU by then.
    """
    device = trainer.strategy.root_device
    home = next(module.parameters()).device
    module.to(device)
    try:
        yield device
    finally:
        module.to(home)
