"""Floating-point operations of one training step per image, counted once per architecture.

``training_flops_per_image(arch, channels, size)`` builds the network on PyTorch's ``meta`` device
(shapes only: no memory, no arithmetic, milliseconds even for VGG-19 at 224 px), runs a forward
pass and the backward pass of the cross-entropy loss on a batch of 2 (batch norm's least) under
``torch.utils.flop_counter.FlopCounterMode``, and returns the count over 2.

FlopCounterMode counts matrix products and convolutions (``2 x multiply-adds``: a convolution
with ``C_in`` inputs, ``C_out`` outputs, a ``k x k`` kernel and an ``H x W`` output costs
``2 C_in C_out k^2 H W`` FLOPs forward, about twice that backward: the gradients of the input and
of the weights); element-wise work (activations, normalisation, the optimiser) is not counted.
Unit: FLOPs per image per training step (forward + backward).
"""

from __future__ import annotations

__all__ = ["module_training_flops", "training_flops_per_image", "parameter_count"]

COUNT_BATCH = 2
"""Images in the counted batch (batch norm needs 2 to train)."""


def module_training_flops(model, x) -> int:
    """FLOPs of ``model(x)`` forward plus the backward of the summed logits' cross-entropy (labels 0)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        logits = model(x)
        F.cross_entropy(logits.float(), torch.zeros(x.shape[0], dtype=torch.long, device=x.device)).backward()
    return int(counter.get_total_flops())


def training_flops_per_image(arch: str, channels: int, size: int, num_classes: int = 2) -> float:
    """FLOPs per image of one training step of the registry's ``arch`` at ``size`` px and ``channels``
    (counted on the meta device at a batch of :data:`COUNT_BATCH`)."""
    import torch

    from lightning_dims.models.registry import create_model

    with torch.device("meta"):
        model = create_model(arch, in_chans=channels, num_classes=num_classes)
        x = torch.empty(COUNT_BATCH, channels, size, size, requires_grad=False)
    model.train()
    return module_training_flops(model, x) / COUNT_BATCH


def parameter_count(arch: str, channels: int, num_classes: int = 2) -> int:
    """Trainable parameters of the registry's ``arch`` (built on the meta device)."""
    import torch

    from lightning_dims.models.registry import create_model

    with torch.device("meta"):
        model = create_model(arch, in_chans=channels, num_classes=num_classes)
    return sum(parameter.numel() for parameter in model.parameters())
