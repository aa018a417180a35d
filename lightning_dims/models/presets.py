"""Training hyperparameters of the paper (paper.md §4) and the automatic precision choice.

Paper protocol: Adam, weight decay 1e-4, 100 epochs, no augmentation; learning rate 1e-3 for
ResNets and 1e-4 for VGGs, except 1e-6 for VGG on SVHN; batch sizes ResNet-18 40, ResNet-34 25,
ResNet-50 12, VGG 6. Architectures the paper did not train (timm models) have no paper value:
they get :data:`GENERIC_LR` and keep the data module's batch size.
"""

from __future__ import annotations

from lightning_dims.models.registry import arch_spec

PAPER_LR_BY_FAMILY: dict[str, float] = {"resnet": 1e-3, "vgg": 1e-4}
"""Adam learning rate per architecture family."""

PAPER_LR_EXCEPTIONS: dict[tuple[str, str], float] = {("vgg", "svhn"): 1e-6}
"""(family, dataset) -> learning rate, where the paper departs from the family's rate."""

PAPER_BATCH_SIZES: dict[str, int] = {"resnet18": 40, "resnet34": 25, "resnet50": 12, "vgg13": 6, "vgg16": 6, "vgg19": 6}
"""Images per optimiser step the authors actually used."""

PAPER_WEIGHT_DECAY = 1e-4
PAPER_MAX_EPOCHS = 100
PAPER_IMAGE_SIZE = 224
PAPER_TEST_SIZE = 750
GENERIC_LR = 1e-3
"""Learning rate for architectures outside the paper (Adam's customary default)."""


def paper_learning_rate(arch: str, dataset: str | None = None) -> float:
    """The paper's Adam learning rate for ``arch`` trained on ``dataset`` (registry names)."""
    family = arch_spec(arch).family
    if dataset is not None and (family, dataset.lower()) in PAPER_LR_EXCEPTIONS:
        return PAPER_LR_EXCEPTIONS[(family, dataset.lower())]
    return PAPER_LR_BY_FAMILY.get(family, GENERIC_LR)


def paper_batch_size(arch: str) -> int | None:
    """The paper's batch size for ``arch``; None for architectures the paper did not train."""
    return PAPER_BATCH_SIZES.get(arch)


def paper_defaults(arch: str, dataset: str | None) -> dict[str, object]:
    """CLI defaults (dotted keys) of the ``paper`` preset for one architecture and dataset.

    They are defaults: anything given on the command line or in a ``--config`` file wins.
    """
    defaults: dict[str, object] = {
        "model.lr": paper_learning_rate(arch, dataset),
        "model.weight_decay": PAPER_WEIGHT_DECAY,
        "trainer.max_epochs": PAPER_MAX_EPOCHS,
        "data.size": PAPER_IMAGE_SIZE,
        "data.test_size": PAPER_TEST_SIZE,
        "data.intensity": "max255",
    }
    batch_size = paper_batch_size(arch)
    if batch_size is not None:
        defaults["data.batch_size"] = batch_size
    return defaults


def mixed_precision(accelerator: str | None, cuda_available: bool, bf16_supported: bool) -> str | None:
    """The precision to default to: mixed on a CUDA GPU, None (Lightning's 32-bit) elsewhere.

    ``bf16-mixed`` where the GPU supports bfloat16 (no loss scaling needed), else ``16-mixed``.
    Only an accelerator that can resolve to CUDA (``auto``, ``gpu``, ``cuda``) gets mixed precision.
    """
    if not cuda_available or str(accelerator or "auto").lower() not in ("auto", "gpu", "cuda"):
        return None
    return "bf16-mixed" if bf16_supported else "16-mixed"
