"""Measuring a torch network on a DataLoader, no Trainer needed: batches, layers, d_repr, adversarial robustness.

The Lightning callbacks (:mod:`lightning_dims.callbacks`) are built on these; use them directly on
an already-trained model: :func:`representation_dimension` (d_repr of named layers) and
:func:`adversarial_robustness` (FGSM / PGD loss and accuracy penalties), both exported at the
package root.
"""

from lightning_dims.network.activations import ActivationRecorder, LayerSpec, default_layers, module_names
from lightning_dims.network.attack import BoundsWarning, PGDSettings, adversarial_robustness
from lightning_dims.network.batches import BatchFormat
from lightning_dims.network.representation import (
    DegenerateRepresentationError,
    LayerEstimate,
    ReprDimWarning,
    estimate_layer_dimensions,
    representation_dimension,
)

__all__ = [
    "ActivationRecorder",
    "BatchFormat",
    "BoundsWarning",
    "DegenerateRepresentationError",
    "LayerEstimate",
    "LayerSpec",
    "PGDSettings",
    "ReprDimWarning",
    "adversarial_robustness",
    "default_layers",
    "estimate_layer_dimensions",
    "module_names",
    "representation_dimension",
]
