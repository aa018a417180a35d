"""``brain-tissue``: grey vs white matter patches of the MNI152 brain MRI template bundled in nilearn.

A real (averaged) T1-weighted brain MRI that ships with a dependency, so the pipeline has a
medical dataset offline. Construction, deterministic:

* volumes: nilearn's bundled ICBM152 2009a T1 template and its grey/white matter probability
  maps, 1 mm isotropic (197 x 233 x 189), intensities in [0, 1];
* patches: ``patch x patch`` squares from axial slices, centred on an in-plane grid of step
  ``stride`` voxels, every ``slice_step``-th axial slice;
* label: 0 = grey matter where the centre voxel's grey-matter probability is >= ``confidence``,
  1 = white matter where its white-matter probability is; every other centre is dropped;
* splits: the brain's axial extent is cut into slabs of ``slab`` slices, assigned in the cycle
  train, val, train, test; ``gap`` slices between slabs are dropped, so no slice (and no voxel)
  of a test patch is within ``gap`` mm of a training patch's slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, content_signature
from lightning_dims.data.registry import register_dataset

__all__ = ["SLAB_CYCLE", "load_brain_tissue", "mni152_volumes", "slab_partition", "tissue_patches"]

SLAB_CYCLE = ("train", "val", "train", "test")


def mni152_volumes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T1, grey-matter probability, white-matter probability) float32 volumes, 1 mm, from nilearn's bundled files."""
    from nilearn.datasets import load_mni152_gm_template, load_mni152_template, load_mni152_wm_template

    return tuple(
        np.asarray(load(resolution=1).get_fdata(), dtype=np.float32)
        for load in (load_mni152_template, load_mni152_gm_template, load_mni152_wm_template)
    )


def slab_partition(slices: np.ndarray, first: int, slab: int, gap: int) -> np.ndarray:
    """Split name per axial slice index (``""`` for slices dropped in the gaps between slabs)."""
    position = slices - first
    slab_index = position // (slab + gap)
    inside = position % (slab + gap) < slab
    names = np.asarray(SLAB_CYCLE)[slab_index % len(SLAB_CYCLE)]
    return np.where(inside, names, "")


def tissue_patches(
    patch: int = 32, stride: int = 4, slice_step: int = 2, confidence: float = 0.9, slab: int = 12, gap: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(patches (N, patch, patch) float32, labels (N,), partition (N,), centres (N, 3) voxel indices)."""
    if patch < 4 or stride < 1 or slice_step < 1 or slab < 1 or gap < 0 or not 0.5 < confidence <= 1:
        raise ValueError(
            "brain-tissue needs patch >= 4, stride >= 1, slice_step >= 1, slab >= 1, gap >= 0 and confidence in (0.5, 1]"
        )
    t1, grey, white = mni152_volumes()
    brain_slices = np.flatnonzero(((grey + white) > 0.5).any(axis=(0, 1)))
    half = patch // 2
    xs = np.arange(half, t1.shape[0] - (patch - half) + 1, stride)
    ys = np.arange(half, t1.shape[1] - (patch - half) + 1, stride)
    zs = np.arange(brain_slices.min(), brain_slices.max() + 1, slice_step)
    cx, cy, cz = (axis.ravel() for axis in np.meshgrid(xs, ys, zs, indexing="ij"))
    is_grey = grey[cx, cy, cz] >= confidence
    is_white = white[cx, cy, cz] >= confidence
    split = slab_partition(cz, int(brain_slices.min()), slab, gap)
    keep = (is_grey ^ is_white) & (split != "")
    cx, cy, cz, labels, split = cx[keep], cy[keep], cz[keep], is_white[keep].astype(np.int64), split[keep]
    offsets = np.arange(patch) - half
    patches = t1[
        (cx[:, None, None] + offsets[None, :, None]),
        (cy[:, None, None] + offsets[None, None, :]),
        cz[:, None, None],
    ]
    return patches.astype(np.float32), labels, split, np.stack([cx, cy, cz], axis=1)


@register_dataset(
    "brain-tissue",
    domain="medical",
    channels=1,
    num_classes=2,
    default_classes="all",
    task="MNI152 T1 axial patches: grey (0) vs white (1) matter at the centre voxel; train/val/test from separate axial slabs",
    source="bundled with nilearn (ICBM152 2009a template and tissue maps); nothing to download",
    layout="none (embedded)",
    embedded=True,
    options={"patch": 32, "stride": 4, "slice_step": 2, "confidence": 0.9, "slab": 12, "gap": 4},
)
def load_brain_tissue(root: Path | None = None, classes=None, download: bool = False, **options) -> ArrayPool:
    patches, labels, partition, centres = tissue_patches(**options)
    return ArrayPool(
        labels=labels,
        class_names=["grey matter", "white matter"],
        partition=partition,
        images=patches,
        signature="mni152-" + content_signature(centres, labels),
    )
