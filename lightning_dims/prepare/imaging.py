"""Pixel arithmetic of the authors' extraction, and atomic image writing.

The authors' DICOM notebooks (RSNA, DBC, Prostate) all do, per image::

    x = stored.astype(float) * 255 / stored.max()      # stored values: no rescale slope, no window
    x = skimage.transform.resize(x, (224, 224))          # RSNA and Prostate only
    x = x.astype(uint8)                                  # truncation toward zero
    if PhotometricInterpretation == "MONOCHROME1": x = 255 - x   # np.invert on uint8

:func:`authors_uint8` is that, with one deviation: values below 0 (signed stored data, e.g. CT
padding of -2000) are clipped to 0 before the cast, where the authors' cast wrapped them around to
bright values (a float -> uint8 cast of a negative number is undefined in C; numpy gives x mod 256).

:func:`resize_like_skimage` re-implements ``skimage.transform.resize(x, shape)`` with its defaults
(order 1, mode ``reflect``, anti-aliasing on when shrinking, clip to the input range) on
scipy.ndimage: a Gaussian filter with sigma = max(0, (s - 1) / 2) per axis (s = input/output size,
ndimage mode ``mirror``), then linear interpolation ``scipy.ndimage.zoom(order=1, mode="mirror",
grid_mode=True)`` (pixel areas, not centres, aligned), then clipping to [min, max] of the input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from lightning_dims.utils import TEMPORARY_GLOB, atomic_open

__all__ = [
    "JPEG_QUALITY",
    "authors_uint8",
    "copy_verified",
    "max_scaled",
    "remove_partials",
    "resize_like_skimage",
    "round_uint8",
    "truncate_uint8",
    "write_image",
]
"""Temporary files being written carry this prefix; a resumed prepare deletes leftovers."""

JPEG_QUALITY = 95
"""OpenCV's ``cv2.imwrite`` default JPEG quality, which the authors' BraTS slices were written with."""


def resize_like_skimage(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``skimage.transform.resize(image, shape)`` for a 2D float image (see the module docstring); float64."""
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    factors = np.divide(image.shape, shape)
    if tuple(image.shape) == tuple(shape):
        return image.copy()
    filtered = image
    if np.any(factors > 1):
        sigma = np.maximum(0.0, (factors - 1) / 2)
        filtered = ndimage.gaussian_filter(image, sigma, mode="mirror", cval=0.0)
    out = ndimage.zoom(filtered, 1 / factors, order=1, mode="mirror", cval=0.0, grid_mode=True)
    return np.clip(out, image.min(), image.max())


def max_scaled(pixels: np.ndarray) -> np.ndarray:
    """``pixels * 255 / pixels.max()`` as float64; the caller checks the maximum is positive."""
    pixels = np.asarray(pixels)
    return pixels.astype(np.float64) * 255.0 / float(pixels.max())


def truncate_uint8(values: np.ndarray) -> np.ndarray:
    """Float -> uint8 the way ``ndarray.astype(np.uint8)`` does for 0..255 (toward zero), clipping to [0, 255] first."""
    return np.floor(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def round_uint8(values: np.ndarray) -> np.ndarray:
    """Float -> uint8 rounding half to even, clipped (OpenCV's ``convertTo(CV_8U)`` in ``cv2.imwrite``)."""
    return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def authors_uint8(pixels: np.ndarray, size: int, monochrome1: bool) -> np.ndarray:
    """Stored pixels -> the authors' uint8 image: max-scaled to 255, resized (``size`` > 0), truncated, inverted if MONOCHROME1.

    Raises ValueError for an image whose maximum is not positive (blank: the authors' 255 / max was NaN).
    """
    pixels = np.asarray(pixels)
    peak = float(pixels.max())
    if not peak > 0:
        raise ValueError(f"blank image (maximum stored value {peak:g})")
    values = max_scaled(pixels)
    if size:
        values = resize_like_skimage(values, (size, size))
    image = truncate_uint8(values)
    return 255 - image if monochrome1 else image


def write_image(path: Path, image: np.ndarray, image_format: str = "png") -> None:
    """Write a uint8 gray image atomically (temporary file + rename): PNG (lossless) or JPEG at :data:`JPEG_QUALITY`."""
    from PIL import Image

    options = {"format": "JPEG", "quality": JPEG_QUALITY} if image_format == "jpg" else {"format": "PNG"}
    with atomic_open(path, "wb", fsync=False) as stream:  # a killed prepare converts the file again
        Image.fromarray(np.ascontiguousarray(image)).save(stream, **options)


def copy_verified(source: Path, destination: Path) -> tuple[int, ...]:
    """Copy an image file byte for byte (atomically) after decoding it fully; returns its (height, width).

    Raises OSError/ValueError (from Pillow) for a file that does not decode.
    """
    from PIL import Image

    with Image.open(source) as image:
        image.load()
        shape = (image.height, image.width)
    with open(source, "rb") as original, atomic_open(destination, "wb", fsync=False) as stream:
        shutil.copyfileobj(original, stream)
    return shape


def remove_partials(folder: Path) -> int:
    """Delete temporary files a killed prepare left under ``folder``; returns how many."""
    removed = 0
    for path in Path(folder).rglob(TEMPORARY_GLOB):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
