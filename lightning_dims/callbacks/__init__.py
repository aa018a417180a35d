"""Lightning callbacks measuring what a trained network does: d_repr, adversarial robustness, data properties
(and BatchNormRecalibration, which re-estimates batch-norm statistics so short runs are evaluated as trained).

They find their data wherever Lightning holds it (a DataModule, loaders passed to ``trainer.fit``,
or their own ``dataloader=``), batches as tuples or dicts, and model outputs as tensors, tuples or
dicts (:mod:`lightning_dims.network.batches`). Attach them in a LightningCLI config (``callbacks/paper.yaml``, ``callbacks/fast.yaml``) or pass
them to ``Trainer(callbacks=[...])``. Each has ``results_record_fields()``, merged into the run's
results record.
"""

from lightning_dims.callbacks.adversarial import AdversarialEvalCallback, robustness_metrics
from lightning_dims.callbacks.batchnorm import BatchNormRecalibration
from lightning_dims.callbacks.data_properties import DataPropertiesCallback
from lightning_dims.callbacks.repr_dim import ReprDimCallback
from lightning_dims.network import (
    ActivationRecorder,
    DegenerateRepresentationError,
    LayerEstimate,
    LayerSpec,
    ReprDimWarning,
    default_layers,
    estimate_layer_dimensions,
    module_names,
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
