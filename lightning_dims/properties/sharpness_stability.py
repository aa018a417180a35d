"""How stable is K_F, a max statistic, under the choice of the m sampled images? (paper.md §6)

K_F is a maximum over pairs, so it grows with the number of images compared and depends on which
images were drawn. :func:`label_sharpness_stability` recomputes K_F over ``repeats`` independent
draws of ``m`` images (without replacement) for each ``m`` and reports the spread: the numbers a
user needs before comparing two datasets' K_F (a difference smaller than the spread says little).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lightning_dims.properties.label_sharpness import label_sharpness

__all__ = ["SharpnessSpread", "label_sharpness_stability"]


@dataclass(frozen=True)
class SharpnessSpread:
    """K_F over ``repeats`` draws of ``m`` images: mean, standard deviation (ddof=1), range, values."""

    m: int
    mean: float
    std: float
    min: float
    max: float
    values: list[float]


def label_sharpness_stability(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    ms: Sequence[int] = (125, 250, 500, 1000),
    repeats: int = 10,
    seed: int = 0,
    mode: str = "exhaustive",
) -> list[SharpnessSpread]:
    """K_F over ``repeats`` seeded draws (seeds ``seed .. seed + repeats - 1``) for each ``m``.

    Draw ``r`` at size ``m`` is exactly ``label_sharpness(x, y, m=m, mode=mode, seed=seed + r)``.
    Sizes at or above N are clipped to N (all images: no spread) with a warning.
    """
    if repeats < 2:
        raise ValueError(f"repeats={repeats}: a spread needs at least 2 draws")
    n = int(x.shape[0])
    sizes = sorted({min(int(m), n) for m in ms})
    if any(int(m) > n for m in ms):
        warnings.warn(f"sizes above the {n} images available were clipped to {n} (every draw is then the whole set)", stacklevel=2)
    spreads = []
    for m in sizes:
        values = [float(label_sharpness(x, y, m=m, mode=mode, seed=seed + r)) for r in range(repeats)]
        array = np.asarray(values)
        spreads.append(SharpnessSpread(m, float(array.mean()), float(array.std(ddof=1)), float(array.min()), float(array.max()), values))
    return spreads
