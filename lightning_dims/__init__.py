"""lightning-dims: intrinsic dataset properties (K_F, d_data, d_repr) and how they govern learning.

The estimators' public names are loaded on first use (PEP 562 ``__getattr__``): they import torch,
and the command-line dispatcher (``lightning_dims.cli``) checks a command line before torch loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_dims.properties import (
        IntrinsicDimensionResult,
        LabelSharpnessResult,
        intrinsic_dimension,
        knn,
        label_sharpness,
    )

__version__ = "0.1.0"

__all__ = [
    "IntrinsicDimensionResult",
    "LabelSharpnessResult",
    "__version__",
    "intrinsic_dimension",
    "knn",
    "label_sharpness",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("lightning_dims.properties"), name)
    raise AttributeError(f"module 'lightning_dims' has no attribute {name!r}")
