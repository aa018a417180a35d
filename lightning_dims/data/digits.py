"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, offline).

The UCI optical-recognition digits as shipped inside scikit-learn: gray values 0..16, about 180
images per class. Small enough that a class pair holds only ~350 images, so by default the task
uses all ten classes; pass ``classes`` for a binary task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, content_signature
from lightning_dims.data.registry import register_dataset

__all__ = ["load_digits_pool"]


@register_dataset(
    "digits",
    domain="natural",
    channels=1,
    num_classes=10,
    default_classes="all",
    task="digit 0-9 (8x8 gray, values 0..16); pass classes=[a, b] for a binary task",
    source="bundled with scikit-learn (sklearn.datasets.load_digits); nothing to download",
    layout="none (embedded)",
    embedded=True,
)
def load_digits_pool(root: Path | None = None, classes: list[int] | None = None, download: bool = False) -> ArrayPool:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)
    labels = digits.target.astype(np.int64)
    return ArrayPool(
        labels=labels,
        class_names=[str(c) for c in range(10)],
        images=images,
        signature="sklearn-digits-" + content_signature(images, labels),
    )
