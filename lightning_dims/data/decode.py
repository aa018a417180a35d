"""Image decoding and preprocessing: a pool's images read once into one (N, C, S, S) tensor.

:func:`load_split` decodes a split's files on threads and applies the preprocessing spec
(:func:`~lightning_dims.data.spec.preprocess`) in chunks, so peak memory stays bounded at 224 px;
:func:`preprocess_images` batches native-size images of possibly different sizes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from lightning_dims.data.pool import ImagePool
from lightning_dims.data.spec import PreprocessingSpec, preprocess
from lightning_dims.machine import usable_cores

__all__ = ["DECODE_CHUNK", "PREPROCESS_CHUNK", "image_channels", "load_split", "preprocess_images"]

PREPROCESS_CHUNK = 256
"""Images preprocessed per batch when materialising a split (bounds peak memory at 224 px)."""

DECODE_CHUNK = 32
"""Image files decoded and preprocessed per task of the decoding threads."""


def preprocess_images(images: list[torch.Tensor], spec: PreprocessingSpec) -> torch.Tensor:
    """Preprocess native-size images (possibly of different sizes) into one (N, C, S, S) tensor."""
    if not images:
        size = spec.size or 1
        return torch.zeros((0, spec.channels, size, size), dtype=torch.float32)
    out = []
    for start in range(0, len(images), PREPROCESS_CHUNK):
        chunk = images[start : start + PREPROCESS_CHUNK]
        if all(image.shape == chunk[0].shape for image in chunk):
            out.append(preprocess(torch.stack(chunk), spec))
        else:
            out.extend(preprocess(image[None], spec) for image in chunk)
    shapes = {tuple(t.shape[1:]) for t in out}
    if len(shapes) > 1:
        raise ValueError(
            f"images have different sizes {sorted(shapes)[:3]}...; set a fixed size (size=224) to batch them"
        )
    return torch.cat(out)


def load_split(
    pool: ImagePool,
    indices: np.ndarray,
    spec: PreprocessingSpec,
    threads: int | None = None,
    progress: bool | None = False,
    desc: str = "decoding",
) -> torch.Tensor:
    """The images at ``indices`` of ``pool``, read and preprocessed once into one (N, C, S, S) tensor.

    File pools are decoded and preprocessed in chunks of :data:`DECODE_CHUNK` images on ``threads``
    threads (default: every usable core; Pillow and torch release the GIL while they work); in-memory
    pools in this thread (torch parallelises the resize itself). The result is bit-identical to
    :func:`preprocess_images` over the whole list: every step of :func:`~lightning_dims.data.spec.preprocess`
    works on each image alone. ``progress``: a bar counting images (None: only on a terminal).
    """
    from tqdm.auto import tqdm

    indices = np.asarray(indices, dtype=np.int64)
    threads = usable_cores() if threads is None else max(1, int(threads))
    chunk = DECODE_CHUNK if pool.decodes_files else PREPROCESS_CHUNK
    chunks = [indices[start : start + chunk] for start in range(0, len(indices), chunk)]
    disable = True if not len(indices) else (None if progress is None else not progress)  # None: tqdm shows it on a terminal
    with tqdm(total=len(indices), desc=desc, unit="img", disable=disable, dynamic_ncols=True) as bar:

        def load(part: np.ndarray) -> torch.Tensor:
            images = preprocess_images(pool.read(part), spec)
            bar.update(len(part))
            return images

        if pool.decodes_files and threads > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=threads) as executor:
                parts = list(executor.map(load, chunks))
        else:
            parts = [load(part) for part in chunks]
    if not parts:
        return preprocess_images([], spec)
    shapes = {tuple(part.shape[1:]) for part in parts}
    if len(shapes) > 1:
        raise ValueError(
            f"images have different sizes {sorted(shapes)[:3]}...; set a fixed size (size=224) to batch them"
        )
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def image_channels(image: torch.Tensor) -> int:
    """1 for (H, W) or (1, H, W); 3 for (3, H, W)."""
    return 1 if image.ndim == 2 else int(image.shape[0])
