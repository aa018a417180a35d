"""``synthetic``: images with a known intrinsic dimension d and a label whose visibility is a parameter.

Construction (all from ``map_seed``, so the map is fixed and the images reproducible):

* latent factors ``theta ~ Uniform[0, 2 pi)^d``, embedded as ``(cos theta_i, sin theta_i)``: a
  flat d-torus (no boundary, uniform density), whose kNN geometry the MLE reads as ~d (a
  uniform cube's boundary would bias it low);
* a fixed smooth random linear map into pixels: 2d smooth random fields (Gaussian-filtered
  white noise, width ``side / 3``), one per coordinate, so
  ``image = 0.5 + s * sum_i w_i (cos theta_i F_{2i} + sin theta_i F_{2i+1})`` with ``s`` chosen so
  the interior stays inside [0.05, 0.95];
* a constant one-pixel frame at 1.0, so every image's maximum is 1 and the paper's per-image
  ``max255`` scaling is one global factor that leaves the geometry (and d) untouched;
* label ``y = 1[sin theta_0 >= 0]``; factor 0 is drawn with weight ``w_0 = contrast``
  (``w_i = 1`` otherwise). A faint label factor (small contrast) puts differently labelled
  images close together: K_F rises roughly like ``1 / contrast`` at fixed d, the way a small
  lesion does in a scan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, content_signature
from lightning_dims.data.registry import register_dataset

__all__ = ["INTERIOR_HALF_RANGE", "load_synthetic", "smooth_fields", "synthetic_images"]

INTERIOR_HALF_RANGE = 0.45
"""Interior pixels stay within 0.5 +- this, below the frame's 1.0."""


def smooth_fields(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    """``count`` unit-norm smooth random (side, side) fields: white noise low-passed with a Gaussian of width side/3."""
    noise = rng.standard_normal((count, side, side))
    frequencies = np.fft.fftfreq(side)
    fx, fy = np.meshgrid(frequencies, frequencies, indexing="ij")
    low_pass = np.exp(-(fx**2 + fy**2) * (side / 3.0) ** 2 / 2)
    fields = np.real(np.fft.ifft2(np.fft.fft2(noise) * low_pass))
    return fields / np.linalg.norm(fields.reshape(count, -1), axis=1)[:, None, None]


def synthetic_images(
    n: int, d: int, contrast: float = 1.0, side: int = 16, map_seed: int = 0, sample_seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, side, side) float32 in [0, 1], labels (n,) int64, latent angles (n, d)).

    See the module docstring. ``map_seed`` fixes the map, ``sample_seed`` the latent draws.
    """
    if d < 1 or n < 2 or side < 4:
        raise ValueError(f"synthetic needs d >= 1, n >= 2 and side >= 4; got d={d}, n={n}, side={side}")
    if not 0 < contrast <= 1:
        raise ValueError(f"synthetic contrast must be in (0, 1] (1: the label factor as visible as the others), got {contrast}")
    fields = smooth_fields(np.random.default_rng(map_seed), 2 * d, side).reshape(2 * d, -1)
    scale = INTERIOR_HALF_RANGE / np.abs(fields).sum(axis=0).max()  # bound at contrast 1, so s is contrast-free
    theta = np.random.default_rng([map_seed, sample_seed]).uniform(0.0, 2 * np.pi, size=(n, d))
    weights = np.ones(d)
    weights[0] = contrast
    coordinates = np.concatenate([weights * np.cos(theta), weights * np.sin(theta)], axis=1)
    order = np.concatenate([np.arange(d) * 2, np.arange(d) * 2 + 1])  # cos_i -> F_2i, sin_i -> F_2i+1
    images = (0.5 + scale * coordinates @ fields[order]).reshape(n, side, side)
    images[:, [0, -1], :] = 1.0
    images[:, :, [0, -1]] = 1.0
    labels = (np.sin(theta[:, 0]) >= 0).astype(np.int64)
    return images.astype(np.float32), labels, theta


@register_dataset(
    "synthetic",
    domain="synthetic",
    channels=1,
    num_classes=2,
    default_classes="all",
    task="label = 1[sin theta_0 >= 0] of d torus factors; option contrast sets the label factor's visibility",
    source="generated (fixed smooth random map of d latent factors); nothing to download",
    layout="none (generated)",
    embedded=True,
    options={"d": 8, "contrast": 1.0, "n": 4000, "side": 16, "map_seed": 0},
)
def load_synthetic(
    root: Path | None = None,
    classes=None,
    download: bool = False,
    d: int = 8,
    contrast: float = 1.0,
    n: int = 4000,
    side: int = 16,
    map_seed: int = 0,
) -> ArrayPool:
    images, labels, _ = synthetic_images(int(n), int(d), float(contrast), int(side), int(map_seed))
    return ArrayPool(
        labels=labels,
        class_names=["sin theta_0 < 0", "sin theta_0 >= 0"],
        images=images,
        signature="synthetic-" + content_signature(images[:64], labels),
    )
