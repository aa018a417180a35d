"""lightning-dims: intrinsic dataset properties (K_F, d_data, d_repr) and how they govern learning.

Without a Trainer: :func:`label_sharpness`, :func:`intrinsic_dimension` and :func:`dataset_properties`
(both from one Gram) of images; :func:`representation_dimension` and :func:`adversarial_robustness`
of a model on a DataLoader. Inside a Trainer: :mod:`lightning_dims.callbacks`.
"""

from lightning_dims.properties import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    dataset_properties,
    intrinsic_dimension,
    knn,
    label_sharpness,
)
from lightning_dims.network import adversarial_robustness, representation_dimension

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
