"""Image pools: every image a dataset can offer, with labels, read by index.

A pool is what a registered loader returns. Labels (and patient ids) are held in memory so a
task can be built and split without touching pixels; pixels are read only for the images a
split actually selects (:meth:`ImagePool.read`). Two kinds: :class:`ArrayPool` (images already
in one array: torchvision, MedMNIST, embedded sets) and :class:`FilePool` (one file per image:
folders, CSV manifests, the radiology sets).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lightning_dims.data.spec import as_nchw
from lightning_dims.errors import LightningDimsError
from lightning_dims.utils import digest

__all__ = [
    "IMAGE_SUFFIXES",
    "ArrayPool",
    "FilePool",
    "ImageFileError",
    "ImagePool",
    "content_signature",
    "file_signature",
    "listing_signature",
    "load_image_array",
    "read_image_file",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
"""File types a :class:`FilePool` reads: anything Pillow opens (8/16-bit gray, RGB), or a 2D/3D ``.npy`` array."""


class ImageFileError(LightningDimsError, ValueError):
    """An image file that cannot be used: unreadable, not an image, or holding NaN/inf values."""


@dataclass
class ImagePool:
    """Labels, class names and optional patient ids / predefined partition of a dataset's images.

    Attributes:
        labels: (N,) int64 original class ids (index into ``class_names``).
        class_names: name of every original class id.
        groups: (N,) patient (or other) ids; images sharing an id never land in two splits.
            None: every image is its own group.
        partition: (N,) ``"train"``/``"val"``/``"test"`` for datasets whose splits are fixed by
            construction (brain-tissue slabs); None: splits are drawn.
        signature: identifies the source files/contents (part of every cache fingerprint).
    """

    labels: np.ndarray
    class_names: list[str]
    groups: np.ndarray | None = None
    partition: np.ndarray | None = None
    signature: str = ""

    decodes_files = False
    """True when reading decodes one file per image (worth spreading over threads)."""

    def __len__(self) -> int:
        return int(len(self.labels))

    def read(self, indices) -> list[torch.Tensor]:
        """Pixels of the images at ``indices``: float32 (C, H, W) or (H, W) tensors, native size and values."""
        raise NotImplementedError

    def files(self, indices) -> list[Path] | None:
        """The files holding the images at ``indices``; None when the pool is not one file per image."""
        return None


@dataclass
class ArrayPool(ImagePool):
    """A pool whose images are one in-memory array (N, H, W), (N, H, W, C) or (N, C, H, W)."""

    images: np.ndarray | torch.Tensor = field(default=None, repr=False)

    def read(self, indices) -> list[torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        picked = torch.as_tensor(np.asarray(self.images[indices]))
        if picked.is_floating_point() and not bool(torch.isfinite(picked).all()):
            bad = indices[~torch.isfinite(picked.flatten(1)).all(dim=1).numpy()]
            raise ImageFileError(f"images {bad[:5].tolist()} of the pool hold NaN or inf values; fix the source array")
        return list(as_nchw(picked))  # channels-last arrays (CIFAR, RGB MedMNIST) become (C, H, W)


def load_image_array(path: Path) -> np.ndarray:
    """The raw pixel array of one file (``.npy`` or anything Pillow opens); :class:`ImageFileError` if unreadable."""
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise ImageFileError(f"{path}: not a readable .npy array ({error}); re-export it or drop it from the dataset") from None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "HSV", "RGBA"):
                image = image.convert("RGB")
            elif image.mode == "1":
                image = image.convert("L")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageFileError(f"{path}: not a readable image ({type(error).__name__}: {error}); re-export it or drop it from the dataset") from None


def read_image_file(path: Path) -> torch.Tensor:
    """One image file as float32 (H, W) or (C, H, W), keeping its bit depth (16-bit PNGs stay 0..65535).

    Raises :class:`ImageFileError` naming the file when it cannot be read or holds NaN or inf.
    """
    try:
        array = np.asarray(load_image_array(path), dtype=np.float32)
    except (TypeError, ValueError) as error:
        if isinstance(error, ImageFileError):
            raise
        raise ImageFileError(f"{path}: pixel values are not numbers ({error})") from None
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ImageFileError(f"{path}: {bad} of {array.size} pixel values are NaN or inf; fix or drop the file")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3):
        array = np.moveaxis(array, -1, 0)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D image (H, W) or (H, W, C), got an array of shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array))


@dataclass
class FilePool(ImagePool):
    """A pool with one image file per sample (see :data:`IMAGE_SUFFIXES`)."""

    paths: list[Path] = field(default_factory=list, repr=False)
    decodes_files = True

    def read(self, indices) -> list[torch.Tensor]:
        return [read_image_file(self.paths[int(i)]) for i in np.asarray(indices, dtype=np.int64)]

    def files(self, indices) -> list[Path]:
        return [self.paths[int(i)] for i in np.asarray(indices, dtype=np.int64)]


def file_signature(*paths: Path) -> str:
    """Cheap identity of source files: resolved path, size and modification time of each."""
    parts = []
    for path in paths:
        stat = Path(path).stat()
        parts.append(f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return digest("|".join(parts), 16)


def listing_signature(paths: list[Path], labels: np.ndarray, root: Path) -> str:
    """Identity of a file-per-image dataset: its relative paths and labels."""
    lines = (
        f"{Path(path).relative_to(root) if Path(path).is_relative_to(root) else path}\t{label}\n"
        for path, label in zip(paths, labels)
    )
    return digest(itertools.chain([str(Path(root).resolve())], lines), 16)


def content_signature(*arrays: np.ndarray) -> str:
    """Identity of generated/embedded data from its bytes."""
    return digest((np.ascontiguousarray(array).tobytes() for array in arrays), 16)
