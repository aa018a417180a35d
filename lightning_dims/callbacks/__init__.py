"""Lightning callbacks measuring what a trained network does: d_repr, adversarial robustness, data properties
(and BatchNormRecalibration, which re-estimates batch-norm statistics so short runs are evaluated as trained).

Attach them in a LightningCLI config (``callbacks/paper.yaml``, ``callbacks/fast.yaml``) or pass
them to ``Trainer(callbacks=[...])``. Each has ``results_record_fields()``, merged into the run's
results record.
"""

from lightning_dims.callbacks.activations import ActivationRecorder, LayerSpec, default_layers, module_names
from lightning_dims.callbacks.adversarial import AdversarialEvalCallback, robustness_metrics
from lightning_dims.callbacks.batchnorm import BatchNormRecalibration
from lightning_dims.callbacks.data_properties import DataPropertiesCallback
from lightning_dims.callbacks.repr_dim import (
    DegenerateRepresentationError,
    LayerEstimate,
    ReprDimCallback,
    ReprDimWarning,
    estimate_layer_dimensions,
)

__all__ = [
    "ActivationRecorder",
    "AdversarialEvalCallback",
    "BatchNormRecalibration",
    "DataPropertiesCallback",
    "DegenerateRepresentationError",
    "LayerEstimate",
    "LayerSpec",
    "ReprDimCallback",
    "ReprDimWarning",
    "default_layers",
    "estimate_layer_dimensions",
    "module_names",
    "robustness_metrics",
]
