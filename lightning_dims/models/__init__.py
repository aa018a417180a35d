"""Architectures (a timm-style registry of the paper's networks plus any timm model) and the LightningModule."""

from lightning_dims.models.classifier import ImageClassifier, task_probabilities
from lightning_dims.models.presets import mixed_precision, paper_batch_size, paper_defaults, paper_learning_rate
from lightning_dims.models.registry import (
    ArchSpec,
    arch_spec,
    create_model,
    feature_layer,
    list_models,
    register_model,
)

__all__ = [
    "ArchSpec",
    "ImageClassifier",
    "arch_spec",
    "create_model",
    "feature_layer",
    "list_models",
    "mixed_precision",
    "paper_batch_size",
    "paper_defaults",
    "paper_learning_rate",
    "register_model",
    "task_probabilities",
]
