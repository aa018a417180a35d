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

**Margin: the same images, labelled with a wider or narrower empty band between the classes.**
``margin > 0`` draws the pool from a torus with :data:`MARGIN_BANDS` = (36, 6, 24, 9, 16, 12)
(degrees of theta_0) emptied: G = 6 pairs of bands, band j of width ``g_j`` centred at
``a_j = j * 180 / G`` degrees and at ``a_j + 180`` (neighbouring bands 30 degrees apart).
theta_0 is drawn uniform on the arcs left (the uniform draw mapped onto them by arc length).
``margin = g_j`` puts the label boundary in band j, ``y = 1[sin(theta_0 - a_j) >= 0]``, so the
two classes are separated by an empty band of ``g_j`` degrees. Every ``margin > 0`` labels **the
same pool of images**: only the labels move, so the pool's d_data is the same by construction;
each half circle holds one band of every other pair, so both classes have the same share of
every band and a class-balanced training set is a uniform draw from that one pool (its d_data
differs between margins only as between two draws). Differently labelled images are at least
the band apart, so ``K_F <= 1 / (2 s sin(g_j / 2) |F_j|)`` with ``|F_j|`` the norm of the label
plane's field in the band's direction (``-sin a_j F_0 + cos a_j F_1``): a narrower margin, a
sharper label. On a plain torus K_F is set by the nearest differently labelled pair of random
images (at d = 2, N = 120 it moved 1.6x between seeds 0 and 1); at d = 2 the band sets it
instead: on the demo's pool (``n = 3000``, 16 px, N = 120, seeds 0..5) K_F falls from 2.3e-2
at margin 6 to 5.8e-3 at margin 36 (4.0x) while d_data stays 1.94-1.96, and the seed-to-seed
reliability (intraclass correlation) of log K_F over the six margins is 0.93 for one seed and
0.96 for the mean of two. At d = 4 the other three angles still set the nearest pair and the
band does not (0.60 for the mean of two). ``margin = 0`` (the default): no bands, the plain
torus, image for image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, content_signature
from lightning_dims.data.registry import register_dataset

__all__ = ["INTERIOR_HALF_RANGE", "MARGIN_BANDS", "label_bands", "load_synthetic", "place_on_arcs", "smooth_fields", "synthetic_images"]

INTERIOR_HALF_RANGE = 0.45
"""Interior pixels stay within 0.5 +- this, below the frame's 1.0."""

MARGIN_BANDS = (36.0, 6.0, 24.0, 9.0, 16.0, 12.0)
"""Widths (degrees of theta_0) of the band pairs emptied when ``margin > 0``, band j centred at j * 30
degrees and j * 30 + 180: wide next to narrow, so the 30 degrees between centres hold both half widths."""


def label_bands(gaps: Sequence[float], margin: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(starts, lengths) of the arcs of theta_0 left outside the bands ``gaps`` (widths in degrees;
    radians out, ascending from the first band's upper edge), and the boundary angle ``a_j`` (radians)
    of the band of width ``margin`` (module docstring, with ``gaps = MARGIN_BANDS``).

    ``gaps = []`` and ``margin = 0``: one arc, the whole circle, boundary at 0.

    Raises:
        ValueError: a gap that is not positive, two equal gaps, bands that overlap, or a ``margin``
            that is not one of ``gaps`` (0 without gaps).
    """
    widths = np.radians(np.asarray(list(gaps), dtype=np.float64))
    if len(widths) == 0:
        if margin != 0:
            raise ValueError(f"synthetic margin={margin} needs bands to lie in; give gaps (their widths, degrees)")
        return np.zeros(1), np.full(1, 2 * np.pi), 0.0
    if np.any(widths <= 0) or len(set(gaps)) != len(widths):
        raise ValueError(f"synthetic gaps must be distinct positive widths in degrees, got {list(gaps)}")
    matches = [j for j, g in enumerate(gaps) if np.isclose(g, margin)]
    if not matches:
        raise ValueError(f"synthetic margin={margin} is not one of the band widths {[float(g) for g in gaps]} (degrees): "
                         "give one of them, or margin=0 for no bands")
    centres = np.arange(len(widths)) * np.pi / len(widths)
    centres, widths = np.concatenate([centres, centres + np.pi]), np.concatenate([widths, widths])
    upper, lower = centres + widths / 2, np.roll(centres, -1) - np.roll(widths, -1) / 2
    lower[-1] += 2 * np.pi
    if np.any(lower <= upper):
        raise ValueError(f"synthetic gaps={list(gaps)} overlap: {len(gaps)} band pairs are {180 / len(gaps):g} degrees apart, "
                         "so two neighbours' half widths must sum to less than that")
    return upper, lower - upper, float(centres[matches[0]])


def place_on_arcs(u: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Uniform draws ``u`` in [0, 2 pi) mapped, by arc length, onto the arcs ``starts + [0, lengths)``."""
    position = u * lengths.sum() / (2 * np.pi)
    ends = np.cumsum(lengths)
    arc = np.minimum(np.searchsorted(ends, position, side="right"), len(lengths) - 1)
    return np.mod(starts[arc] + position - (ends[arc] - lengths[arc]), 2 * np.pi)


def smooth_fields(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    """``count`` unit-norm smooth random (side, side) fields: white noise low-passed with a Gaussian of width side/3."""
    noise = rng.standard_normal((count, side, side))
    frequencies = np.fft.fftfreq(side)
    fx, fy = np.meshgrid(frequencies, frequencies, indexing="ij")
    low_pass = np.exp(-(fx**2 + fy**2) * (side / 3.0) ** 2 / 2)
    fields = np.real(np.fft.ifft2(np.fft.fft2(noise) * low_pass))
    return fields / np.linalg.norm(fields.reshape(count, -1), axis=1)[:, None, None]


def synthetic_images(
    n: int,
    d: int,
    contrast: float = 1.0,
    side: int = 16,
    map_seed: int = 0,
    sample_seed: int = 1,
    margin: float = 0.0,
    gaps: Sequence[float] = MARGIN_BANDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, side, side) float32 in [0, 1], labels (n,) int64, latent angles (n, d)).

    See the module docstring. ``map_seed`` fixes the map, ``sample_seed`` the latent draws;
    ``margin > 0`` (degrees, one of ``gaps``) empties the bands ``gaps`` of theta_0 and puts the
    label boundary in the band of that width; ``margin = 0``: the plain torus.
    """
    if d < 1 or n < 2 or side < 4:
        raise ValueError(f"synthetic needs d >= 1, n >= 2 and side >= 4; got d={d}, n={n}, side={side}")
    if not 0 < contrast <= 1:
        raise ValueError(f"synthetic contrast must be in (0, 1] (1: the label factor as visible as the others), got {contrast}")
    fields = smooth_fields(np.random.default_rng(map_seed), 2 * d, side).reshape(2 * d, -1)
    scale = INTERIOR_HALF_RANGE / np.abs(fields).sum(axis=0).max()  # bound at contrast 1, so s is contrast-free
    starts, lengths, boundary = label_bands(gaps if margin else (), margin)
    theta = np.random.default_rng([map_seed, sample_seed]).uniform(0.0, 2 * np.pi, size=(n, d))
    if margin:
        theta[:, 0] = place_on_arcs(theta[:, 0], starts, lengths)
    weights = np.ones(d)
    weights[0] = contrast
    coordinates = np.concatenate([weights * np.cos(theta), weights * np.sin(theta)], axis=1)
    order = np.concatenate([np.arange(d) * 2, np.arange(d) * 2 + 1])  # cos_i -> F_2i, sin_i -> F_2i+1
    images = (0.5 + scale * coordinates @ fields[order]).reshape(n, side, side)
    images[:, [0, -1], :] = 1.0
    images[:, :, [0, -1]] = 1.0
    labels = (np.sin(theta[:, 0] - boundary) >= 0).astype(np.int64)
    return images.astype(np.float32), labels, theta


@register_dataset(
    "synthetic",
    domain="synthetic",
    channels=1,
    num_classes=2,
    default_classes="all",
    task="label = 1[sin theta_0 >= 0] of d torus factors; option contrast sets the label factor's visibility, "
    "margin (degrees) an empty band between the classes",
    source="generated (fixed smooth random map of d latent factors); nothing to download",
    layout="none (generated)",
    embedded=True,
    options={"d": 8, "contrast": 1.0, "n": 4000, "side": 16, "map_seed": 0, "margin": 0},
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
    margin: float = 0,
) -> ArrayPool:
    images, labels, _ = synthetic_images(int(n), int(d), float(contrast), int(side), int(map_seed), margin=float(margin))
    return ArrayPool(
        labels=labels,
        class_names=["sin(theta_0 - a) < 0", "sin(theta_0 - a) >= 0"],
        images=images,
        signature="synthetic-" + content_signature(images[:64], labels),
    )
