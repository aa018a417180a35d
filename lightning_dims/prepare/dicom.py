"""Reading DICOM files with pydicom the way the authors' notebooks did, refusing what they refused.

Pixels are ``Dataset.pixel_array``: the stored values, with no Modality LUT (rescale slope and
intercept), no VOI LUT (window) and, for MONOCHROME1, no inversion (the caller inverts after
scaling, as the authors did).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_dims.prepare.imaging import authors_uint8
from lightning_dims.prepare.tasks import BadFile, Issue

__all__ = [
    "LUMINANCE",
    "authors_image",
    "authors_slice",
    "frames",
    "gray",
    "is_monochrome1",
    "read_dicom",
    "require_square_pixels",
    "stored_pixels",
]

LUMINANCE = (0.2125, 0.7154, 0.0721)
"""``skimage.color.rgb2gray`` weights: the authors' loader read every image with ``as_gray=True``."""


def read_dicom(path: Path):
    """The pydicom Dataset at ``path``; BadFile when it is not DICOM or unreadable."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise BadFile("unreadable DICOM", f"{type(error).__name__}: {error}") from None


def stored_pixels(dataset) -> np.ndarray:
    """``dataset.pixel_array``; BadFile (naming the transfer syntax and the fix) when it cannot be decoded."""
    try:
        return dataset.pixel_array
    except Exception as error:  # pydicom raises many types here (missing decoder, truncated data)
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        hint = "; pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg for compressed data" if "decod" in str(error).lower() else ""
        raise BadFile("undecodable pixel data", f"{name}: {type(error).__name__}: {error}{hint}") from None


def require_square_pixels(dataset) -> None:
    """Refuse unequal row/column spacing (the authors' notebooks raised on it); resizing would distort anatomy."""
    spacing = dataset.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise BadFile("no PixelSpacing", "square pixels cannot be checked")
    if float(spacing[0]) != float(spacing[1]):
        raise BadFile("unequal pixel spacing", f"PixelSpacing {list(map(float, spacing))}")


def is_monochrome1(dataset) -> bool:
    """MONOCHROME1: low values are bright; the authors inverted the uint8 image (255 - x)."""
    return str(dataset.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"


def gray(pixels: np.ndarray, samples_per_pixel: int) -> np.ndarray:
    """Colour pixels (..., 3) -> luminance with :data:`LUMINANCE`; gray pixels unchanged."""
    if samples_per_pixel == 1:
        return pixels
    return np.asarray(pixels, dtype=np.float64) @ np.asarray(LUMINANCE)


def frames(datasets: list) -> np.ndarray:
    """The frames of an image series as (n, rows, cols): one multi-frame file, or single-frame files by InstanceNumber.

    Colour frames become luminance (:func:`gray`). BadFile for a single-frame series, which has no
    frames to take a central range of.
    """
    if len(datasets) == 1:
        dataset = datasets[0]
        count = int(dataset.get("NumberOfFrames", 1) or 1)
        if count < 2:
            raise BadFile("not a multi-frame series", "one single-frame file; expected a multi-frame volume")
        return gray(stored_pixels(dataset), int(dataset.get("SamplesPerPixel", 1)))
    ordered = sorted(datasets, key=lambda ds: int(ds.get("InstanceNumber", 0) or 0))
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in ordered):
        raise BadFile("mixed series", f"{len(datasets)} files, some multi-frame; expected one multi-frame file or single-frame files")
    stack = [gray(stored_pixels(ds), int(ds.get("SamplesPerPixel", 1))) for ds in ordered]
    if len({image.shape for image in stack}) > 1:
        raise BadFile("mixed series", "frames of different sizes")
    return np.stack(stack)


def authors_image(pixels: np.ndarray, size: int, monochrome1: bool, source: str, what: str = "image") -> tuple[np.ndarray, list]:
    """:func:`~lightning_dims.prepare.imaging.authors_uint8` with its refusals as BadFile and its deviation as a note.

    Returns (uint8 image, issues): a ``note`` when negative stored values were clipped to 0.
    """
    try:
        image = authors_uint8(pixels, size, monochrome1)
    except ValueError as error:
        raise BadFile(f"blank {what}", str(error), source) from None
    issues = []
    low = float(np.min(pixels))
    if low < 0:
        issues.append(Issue("note", "negative stored values clipped to 0", source, f"minimum {low:g}"))
    return image, issues


def authors_slice(path: Path, size: int, source: str) -> tuple[object, np.ndarray, list]:
    """A single-frame DICOM image as the authors' RSNA/DBC notebooks made it: (dataset, uint8 image, issues).

    Refuses (BadFile) unreadable files, unequal or missing pixel spacing, non-2D pixel data and blank images.
    """
    dataset = read_dicom(path)
    require_square_pixels(dataset)
    pixels = stored_pixels(dataset)
    if pixels.ndim != 2:
        raise BadFile("not a single gray image", f"pixel data of shape {pixels.shape}", source)
    image, issues = authors_image(pixels, size, is_monochrome1(dataset), source)
    return dataset, image, issues
