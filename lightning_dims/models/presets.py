"""The paper's training protocol, read from the shipped YAML files, and the automatic precision choice.

The numbers live once, in ``lightning_dims/configs/protocol/``: ``paper.yaml`` (shared by every
architecture), ``arch/<arch>.yaml`` (learning rate, batch size; ``arch/default.yaml`` for
architectures the paper did not train) and ``override/<family or arch>-<dataset>.yaml`` (the
VGG-on-SVHN learning rate). :func:`paper_defaults` composes them, later files winning.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lightning_dims.configs import CONFIG_ROOT, load_yaml
from lightning_dims.models.registry import arch_spec
from lightning_dims.utils import flatten

__all__ = [
    "DERIVED_FROM",
    "PROTOCOL",
    "derived_defaults",
    "mixed_precision",
    "paper_batch_size",
    "paper_defaults",
    "paper_learning_rate",
    "protocol_files",
]

PROTOCOL = CONFIG_ROOT / "protocol"


@cache
def _protocol_file(relative: str) -> dict[str, object]:
    path = PROTOCOL / relative
    return flatten(load_yaml(path)) if path.is_file() else {}


def protocol_files(arch: str, dataset: str | None) -> list[str]:
    """The protocol files that apply to ``arch`` on ``dataset``, in the order they are applied."""
    spec = arch_spec(arch)
    files = ["paper.yaml", f"arch/{arch}.yaml" if (PROTOCOL / "arch" / f"{arch}.yaml").is_file() else "arch/default.yaml"]
    if dataset:
        for who in dict.fromkeys((spec.family, arch)):
            if (PROTOCOL / "override" / f"{who}-{dataset.lower()}.yaml").is_file():
                files.append(f"override/{who}-{dataset.lower()}.yaml")
    return files


def paper_defaults(arch: str, dataset: str | None) -> dict[str, object]:
    """CLI defaults (dotted keys) of the ``paper`` preset for one architecture and dataset.

    They are defaults: anything given on the command line or in a ``--config`` file wins.
    """
    defaults: dict[str, object] = {}
    for relative in protocol_files(arch, dataset):
        defaults.update(_protocol_file(relative))
    return defaults


def paper_learning_rate(arch: str, dataset: str | None = None) -> float:
    """The paper's Adam learning rate for ``arch`` trained on ``dataset`` (registry names)."""
    return float(paper_defaults(arch, dataset)["model.lr"])


def paper_batch_size(arch: str) -> int | None:
    """The paper's batch size for ``arch``; None for architectures the paper did not train."""
    value = paper_defaults(arch, None).get("data.batch_size")
    return None if value is None else int(value)


def mixed_precision(accelerator: str | None, cuda_available: bool, bf16_supported: bool) -> str | None:
    """The precision to default to: mixed on a CUDA GPU, None (Lightning's 32-bit) elsewhere.

    ``bf16-mixed`` where the GPU supports bfloat16 (no loss scaling needed), else ``16-mixed``.
    Only an accelerator that can resolve to CUDA (``auto``, ``gpu``, ``cuda``) gets mixed precision.
    Hardware-dependent, so it stays in code rather than in the protocol files.
    """
    if not cuda_available or str(accelerator or "auto").lower() not in ("auto", "gpu", "cuda"):
        return None
    return "bf16-mixed" if bf16_supported else "16-mixed"


DERIVED_FROM = ("preset", "model.arch", "data.name", "trainer.accelerator")
"""The settings :func:`derived_defaults` reads besides ``data.seed`` (which it copies as it is)."""


def derived_defaults(config: Any, cuda_available: bool, bf16_supported: bool) -> dict[str, object]:
    """``fit``'s defaults that depend on other settings (from its first parse, dotted keys).

    ``seed_everything``: ``data.seed``; with ``preset`` ``paper``, :func:`paper_defaults` for
    ``model.arch`` on ``data.name``; ``trainer.precision``: :func:`mixed_precision` when it picks one.
    """
    defaults: dict[str, object] = {"seed_everything": int(config.data.seed)}
    if config.preset == "paper":
        defaults.update(paper_defaults(config.model.arch, config.data.name))
    precision = mixed_precision(config.trainer.accelerator, cuda_available, bf16_supported)
    if precision is not None:
        defaults["trainer.precision"] = precision
    return defaults
