"""lightning-dims: intrinsic dataset properties (K_F, d_data, d_repr) and how they govern learning.

Without a Trainer: :func:`label_sharpness`, :func:`intrinsic_dimension` and :func:`dataset_properties`
(both from one Gram) of images; :func:`representation_dimension` and :func:`adversarial_robustness`
of a model on a DataLoader. Inside a Trainer: :mod:`lightning_dims.callbacks`.

The public names are loaded on first use (PEP 562 ``__getattr__``): they import torch, and the
command-line dispatcher (``lightning_dims.cli``) checks a command line before torch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_dims.network import adversarial_robustness, representation_dimension
    from lightning_dims.properties import (
        DatasetProperties,
        IntrinsicDimensionResult,
        LabelSharpnessResult,
        dataset_properties,
        intrinsic_dimension,
        knn,
        label_sharpness,
    )

__version__ = "0.1.0"

__all__ = [
    "DatasetProperties",
    "IntrinsicDimensionResult",
    "LabelSharpnessResult",
    "__version__",
    "adversarial_robustness",
    "dataset_properties",
    "intrinsic_dimension",
    "knn",
    "label_sharpness",
    "representation_dimension",
]

_HOMES = {"adversarial_robustness": "lightning_dims.network", "representation_dimension": "lightning_dims.network"}
"""Where each lazily loaded public name lives; the rest are in :mod:`lightning_dims.properties`."""


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(_HOMES.get(name, "lightning_dims.properties")), name)
    raise AttributeError(f"module 'lightning_dims' has no attribute {name!r}")
