"""lightning-dims: intrinsic dataset properties (K_F, d_data, d_repr) and how they govern learning."""

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
    "dataset_properties",
    "intrinsic_dimension",
    "knn",
    "label_sharpness",
]
