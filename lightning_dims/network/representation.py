"""d_repr without a Trainer: the intrinsic dimension of a network's layer activations over a loader (paper §2.3).

:func:`representation_dimension` records the activations of named layers (:mod:`.activations`)
over a fixed, seeded subset of at most ``max_samples`` samples of a loader's dataset, with the
model in eval mode and no gradients, and estimates each layer's intrinsic dimension with the
project's exact-kNN estimators (TwoNN, the paper's choice, and/or MLE). Estimates are unitless.
:class:`~lightning_dims.callbacks.ReprDimCallback` does the same inside a Trainer (every n epochs,
under DDP).

Memory bound: ``max_samples * feature_dim * 4`` bytes per layer (float32 on the CPU), plus the
kNN working memory (512 MiB budget). ResNet-18 ``layer4`` at 224 px has 25,088 features: 1,000
samples take 100 MB.

Degenerate representations: exact duplicate embeddings (dead ReLUs, a collapsed layer) are
dropped before estimating, with a warning naming the layer and the count; when fewer than 3
distinct embeddings remain (or the estimate is not a positive finite number) the layer is
reported as ``None`` with a :class:`ReprDimWarning` (``on_degenerate="warn"``) or raises
(``"raise"``). Never 0 or NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_dims.network.activations import ActivationRecorder, default_layers, layer_list
from lightning_dims.network.batches import BatchFormat, Locator
from lightning_dims.network.sampling import evaluation_mode, fixed_subset, module_device, subset_loader
from lightning_dims.properties import DuplicateSamplesWarning, intrinsic_dimension, make_estimator

__all__ = [
    "DegenerateRepresentationError",
    "LayerEstimate",
    "ReprDimWarning",
    "estimate_layer_dimensions",
    "record_activations",
    "representation_dimension",
]


class ReprDimWarning(UserWarning):
    """A layer's d_repr could not be estimated (degenerate activations); nothing was reported for it."""


class DegenerateRepresentationError(ValueError):
    """A layer's activations are too degenerate for an intrinsic dimension (raised with ``on_degenerate="raise"``)."""


@dataclass(frozen=True)
class LayerEstimate:
    """One d_repr estimate: ``value`` is None exactly when ``error`` says why it is undefined."""

    layer: str
    estimator: str
    value: float | None
    n_samples: int
    n_duplicates: int
    feature_dim: int
    error: str | None = None


def estimate_layer_dimensions(
    activations: Mapping[str, torch.Tensor],
    estimators: Sequence[str] = ("twonn",),
    estimator_options: Mapping[str, Mapping] | None = None,
    on_degenerate: Literal["warn", "raise"] = "warn",
) -> list[LayerEstimate]:
    """Intrinsic dimension of each layer's ``(n, D)`` activations with each estimator.

    ``estimator_options``: each estimator's own options by name, e.g. ``{"mle": {"k": 20}}``.

    Duplicate embeddings are dropped with a ``DuplicateSamplesWarning`` that names the layer. A
    layer whose estimate is undefined (fewer distinct embeddings than the estimator needs) or not
    a positive finite number is reported with ``value=None`` and a ``ReprDimWarning``, or raises
    ``DegenerateRepresentationError`` when ``on_degenerate="raise"``.
    """
    if on_degenerate not in ("warn", "raise"):
        raise ValueError(f"on_degenerate must be 'warn' or 'raise', got {on_degenerate!r}")
    estimates = []
    for layer, rows in activations.items():
        for estimator in estimators:
            options = dict((estimator_options or {}).get(estimator, {}))
            estimates.append(_estimate_one(layer, rows, estimator, options, on_degenerate))
    return estimates


def _estimate_one(layer: str, rows: torch.Tensor, estimator: str, options: dict, on_degenerate: str) -> LayerEstimate:
    n, feature_dim = rows.shape[0], int(rows[0].numel()) if rows.shape[0] else 0
    error, value, n_duplicates = None, None, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateSamplesWarning)
        try:
            result = intrinsic_dimension(rows, estimator=estimator, **options)
        except ValueError as exc:
            error = str(exc)
        else:
            value, n_duplicates = float(result), result.n_duplicates
            if not (math.isfinite(value) and value > 0):
                error = f"the estimate is {value}, not a positive finite number"
    for warning in caught:
        if issubclass(warning.category, DuplicateSamplesWarning):
            warnings.warn(
                f"d_repr/{layer}/{estimator}: {warning.message} (identical embeddings, e.g. dead ReLUs "
                "or a collapsed layer)",
                DuplicateSamplesWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if error is not None:
        n_duplicates = n - int(torch.unique(rows, dim=0).shape[0]) if n else 0
        if n_duplicates:
            hint = (
                f"{n - n_duplicates} distinct of {n}: the layer's activations are (nearly) all identical (dead ReLUs, "
                "a collapsed representation); measure another layer or check the training"
            )
        else:
            hint = "too few samples for the estimator: raise max_samples (MLE needs k + 1) or lower its k (estimator_options)"
        message = f"d_repr/{layer}/{estimator} is undefined on {n} embeddings of dimension {feature_dim}: {error}. {hint}"
        if on_degenerate == "raise":
            raise DegenerateRepresentationError(message)
        warnings.warn(message, ReprDimWarning, stacklevel=3)
        value = None
    return LayerEstimate(layer, estimator, value, n, n_duplicates, feature_dim, error)


def record_activations(
    network: nn.Module,
    layers: Sequence[str],
    loader: DataLoader,
    indices: torch.Tensor,
    *,
    model: nn.Module | None = None,
    batch_format: BatchFormat = BatchFormat(),
    batch_size: int | None = None,
    device: torch.device | None = None,
    forward_context=None,
) -> dict[str, torch.Tensor]:
    """``{layer: (n, D) float32 CPU activations}`` of ``network``'s layers over ``loader.dataset[indices]``.

    ``model`` (default ``network``) is what is called on each batch's images (a LightningModule
    whose ``network`` is a submodule, say), in eval mode, without gradients, on ``device``
    (default: where its parameters are).
    """
    model = network if model is None else model
    device = device or module_device(model)
    recorder = ActivationRecorder(network, layers, max_rows=len(indices))
    with evaluation_mode(model), torch.no_grad(), forward_context or nullcontext(), recorder:
        for batch in subset_loader(loader, indices, batch_size):
            model(batch_format.images(batch).to(device))
    return recorder.activations()


def representation_dimension(
    model: nn.Module,
    loader: DataLoader,
    layers: str | Iterable[str] | None = None,
    *,
    estimators: Sequence[str] = ("twonn",),
    max_samples: int | None = 1000,
    estimator_options: Mapping[str, Mapping] | None = None,
    inputs: Locator = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    on_degenerate: Literal["warn", "raise"] = "warn",
) -> list[LayerEstimate]:
    """d_repr of ``model``'s layers over (a seeded subset of) ``loader``'s dataset, without a Trainer.

    Args:
        model: the network (any ``nn.Module``, a LightningModule too); layer names are its module
            names (``layer4``, ``backbone.layer4``, ``classifier.3``, ``fc:input``, ``avgpool``).
        loader: a DataLoader yielding tensors, tuples or dicts; only its dataset, collate function
            and workers are used (never its sampler).
        layers: a layer spec, a list of them, or None for the architecture's defaults
            (:func:`~lightning_dims.network.activations.default_layers`).
        estimators: any of ``"twonn"`` (paper) and ``"mle"``.
        max_samples: samples embedded (a subset drawn with ``seed``; None: all).
        estimator_options: each estimator's own options, e.g. ``{"mle": {"k": 20}}``.
        inputs: where the images are in a batch (:class:`~lightning_dims.network.batches.BatchFormat`).
        batch_size: forward batch size (None: the loader's).
        device: where to run the forward passes (None: where the model's parameters are).
        on_degenerate: ``"warn"`` (value None and a warning) or ``"raise"``.

    Returns:
        One :class:`LayerEstimate` per layer and estimator (``value`` unitless).

    Example::

        estimates = representation_dimension(model, val_loader, layers="layer4")
        estimates[0].value
    """
    for name, options in (estimator_options or {}).items():
        make_estimator(name, **options)  # unknown estimators or options fail before any forward pass
    layers = layer_list(layers) or default_layers(model)
    indices = fixed_subset(len(loader.dataset), max_samples, seed)
    activations = record_activations(
        model,
        layers,
        loader,
        indices,
        batch_format=BatchFormat(inputs=inputs),
        batch_size=batch_size,
        device=None if device is None else torch.device(device),
    )
    return estimate_layer_dimensions(activations, estimators, estimator_options, on_degenerate)
