"""Dataset and representation properties: K_F, intrinsic dimension, exact kNN."""

from lightning_dims.properties.dataset_properties import DatasetProperties, dataset_properties
from lightning_dims.properties.duplicates import (
    DuplicateSamplesWarning,
    label_conflicts,
)
from lightning_dims.properties.intrinsic_dimension import (
    ESTIMATORS,
    MLE,
    IntrinsicDimensionResult,
    SmallSampleWarning,
    TwoNN,
    intrinsic_dimension,
    make_estimator,
    register_estimator,
)
from lightning_dims.properties.knn import KnnResult, knn
from lightning_dims.properties.label_sharpness import (
    LabelSharpnessResult,
    label_sharpness,
)
from lightning_dims.properties.sharpness_stability import (
    SharpnessSpread,
    label_sharpness_stability,
)

__all__ = [
    "ESTIMATORS",
    "MLE",
    "DatasetProperties",
    "DuplicateSamplesWarning",
    "IntrinsicDimensionResult",
    "KnnResult",
    "LabelSharpnessResult",
    "SharpnessSpread",
    "SmallSampleWarning",
    "TwoNN",
    "dataset_properties",
    "intrinsic_dimension",
    "knn",
    "label_conflicts",
    "label_sharpness",
    "label_sharpness_stability",
    "make_estimator",
    "register_estimator",
]
