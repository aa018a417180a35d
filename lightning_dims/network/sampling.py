"""Which samples of a loader's dataset are measured, in a fixed order, with the model in eval mode.

The measurements never iterate a training loader as it is (it may shuffle, or be wrapped in a
``DistributedSampler`` that pads the last shard with repeated samples): :func:`fixed_subset` draws
a seeded subset of the dataset once and :func:`subset_loader` reads it in order, with the loader's
own collate function and workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["evaluation_mode", "fixed_subset", "module_device", "on_device", "subset_loader"]


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
def on_device(module: nn.Module, device: torch.device) -> Iterator[torch.device]:
    """Move ``module`` to ``device`` for the block, and back to where its parameters were after."""
    home = module_device(module)
    module.to(device)
    try:
        yield device
    finally:
        module.to(home)


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (else buffers) are; the CPU for a module without either (not yet built)."""
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device
