"""BraTS 2018: axial FLAIR slices with tumour vs without, from the training cases' NIfTI volumes.

Download (CBICA, registration): ``MICCAI_BraTS_2018_Data_Training/{HGG,LGG}/<case>/<case>_{flair,t1,
t1ce,t2,seg}.nii.gz``.

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``data/brats/readimg_brats.ipynb``),
re-implemented with nibabel and scipy.ndimage:

* volumes are read as SimpleITK's ``GetArrayFromImage`` returns them, (slice, row, column) = the
  NIfTI array transposed; slices are axial;
* each volume is scaled per case: ``clip((v - p0.1) / (p99.9 - p0.1), 0, 1) * 255`` with the
  0.1th and 99.9th percentiles over the whole volume (:func:`normalise`);
* a slice's label is 1 when its segmentation holds any tumour voxel (:func:`slice_labels`);
* a slice is dropped as ambiguous when the 10 slices starting at it hold some but not all tumour
  slices; the last 10 slices are never dropped this way (:func:`ambiguous_slices`);
* a slice is kept only when its brain mask is one region of at least 7,000 pixels; the mask is
  the scaled T2 slice > 0, eroded then closed with a radius-2 disk, its Roberts-cross edges with
  the holes filled (:func:`brain_mask`);
* the FLAIR slice (``--modality``) is written rounded to uint8 as JPEG at quality 95 (what
  ``cv2.imwrite`` did with the float slice), native 240 x 240.

Deviations: the mask's Roberts filter does not zero the image's outermost pixels (skimage before
0.19 did; brains never touch the border); cases are found by folder instead of five separate globs
zipped by position; cases without a segmentation or a modality are reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_dims.prepare.imaging import resize_like_skimage, round_uint8, write_image
from lightning_dims.prepare.registry import (
    Context,
    Option,
    PrepareError,
    Preparer,
    non_negative_int,
    register_preparer,
    size_option,
)
from lightning_dims.prepare.sources import relative
from lightning_dims.prepare.tasks import BadFile, Issue, Plan, Task, TaskResult

__all__ = [
    "MODALITIES",
    "PREPARER",
    "SUFFIXES",
    "ambiguous_slices",
    "brain_mask",
    "case_files",
    "convert",
    "disk",
    "load_volume",
    "mask_is_brain",
    "normalise",
    "plan",
    "roberts_edges",
    "slice_labels",
]

MODALITIES = ("flair", "t1", "t1ce", "t2")
SUFFIXES = (".nii.gz", ".nii")


def disk(radius: int) -> np.ndarray:
    """``skimage.morphology.disk``: pixels with x^2 + y^2 <= radius^2 (radius 2: 13 pixels)."""
    steps = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(steps, steps)
    return x**2 + y**2 <= radius**2


def normalise(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    """``clip((v - P_low) / (P_high - P_low), 0, 1) * 255`` with percentiles over the whole volume (float64)."""
    bottom, top = np.percentile(volume, [low, high])
    if not top > bottom:
        raise BadFile("constant volume", f"percentiles {low} and {high} are both {bottom:g}")
    return np.clip((np.asarray(volume, dtype=np.float64) - bottom) / (top - bottom), 0.0, 1.0) * 255.0


def slice_labels(segmentation: np.ndarray) -> np.ndarray:
    """(slices, rows, cols) segmentation -> (slices,) 1 where the slice holds any tumour voxel."""
    return (np.asarray(segmentation).reshape(len(segmentation), -1) != 0).any(axis=1).astype(np.int64)


def ambiguous_slices(labels: np.ndarray, window: int) -> np.ndarray:
    """True for slice i < n - window whose window ``labels[i : i + window]`` mixes tumour and non-tumour slices."""
    labels = np.asarray(labels)
    ambiguous = np.zeros(len(labels), dtype=bool)
    for start in range(len(labels) - window):
        total = labels[start : start + window].sum()
        ambiguous[start] = 0 < total < window
    return ambiguous


def roberts_edges(binary: np.ndarray) -> np.ndarray:
    """Where ``skimage.filters.roberts`` of a binary image is non-zero (either diagonal difference non-zero)."""
    from scipy import ndimage

    image = binary.astype(np.float64)
    positive = ndimage.convolve(image, np.array([[1.0, 0.0], [0.0, -1.0]]))
    negative = ndimage.convolve(image, np.array([[0.0, 1.0], [-1.0, 0.0]]))
    return (positive != 0) | (negative != 0)


def brain_mask(t2_slice: np.ndarray) -> np.ndarray:
    """The authors' brain mask of a scaled T2 slice (see the module docstring).

    Erosion treats pixels outside the image as set and dilation as unset (skimage's binary
    morphology), so the mask is not eaten from the image border.
    """
    from scipy import ndimage

    footprint = disk(2)
    binary = ndimage.binary_erosion(t2_slice > 0, footprint, border_value=1)
    binary = ndimage.binary_erosion(ndimage.binary_dilation(binary, footprint, border_value=0), footprint, border_value=1)
    return ndimage.binary_fill_holes(roberts_edges(binary))


def mask_is_brain(mask: np.ndarray, min_area: int) -> bool:
    """One 8-connected region (or none) and at least ``min_area`` pixels (the authors: 7,000 of 240 x 240)."""
    from scipy import ndimage

    _, regions = ndimage.label(mask, structure=np.ones((3, 3)))
    return regions <= 1 and int(mask.sum()) >= min_area


def load_volume(path: Path) -> np.ndarray:
    """A NIfTI volume as SimpleITK's ``GetArrayFromImage`` gives it: (slices, rows, columns), stored dtype."""
    import nibabel

    try:
        image = nibabel.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises ImageFileError, OSError, EOFError, zlib.error
        raise BadFile("unreadable NIfTI", f"{path.name}: {type(error).__name__}: {error}") from None
    if data.ndim != 3:
        raise BadFile("not a 3D volume", f"{path.name}: shape {data.shape}")
    return np.transpose(data, (2, 1, 0))


def case_files(folder: Path, case: str) -> dict[str, Path | None]:
    """The case's volumes by modality (and ``seg``), None where absent."""
    found = {}
    for kind in MODALITIES + ("seg",):
        found[kind] = next((folder / f"{case}_{kind}{suffix}" for suffix in SUFFIXES if (folder / f"{case}_{kind}{suffix}").is_file()), None)
    return found


def plan(source: Path, options: dict) -> Plan:
    cases = sorted({path.parent for suffix in SUFFIXES for path in source.rglob(f"*_flair{suffix}")} | {path.parent for suffix in SUFFIXES for path in source.rglob(f"*_seg{suffix}")})
    if not cases:
        raise PrepareError(f"no BraTS case folders (<case>/<case>_flair.nii.gz, ..._seg.nii.gz) under {source}")
    tasks, issues = [], []
    for folder in cases:
        files = case_files(folder, folder.name)
        shown = relative(folder, source)
        missing = [kind for kind, path in files.items() if path is None]
        if missing:
            reason = "no segmentation (not a training case)" if missing == ["seg"] else "case lacks volumes"
            issues.append(Issue("unexpected", reason, shown, "missing: " + ", ".join(missing)))
            continue
        payload = {"case": folder.name, "grade": folder.parent.name, "folder": shown, "files": {kind: relative(path, source) for kind, path in files.items()}}
        tasks.append(Task(folder.name, payload, None, shown))
    return Plan(tasks, issues)


def convert(payload: dict, context: Context) -> TaskResult:
    options = context.options
    volumes = {kind: load_volume(context.source / payload["files"][kind]) for kind in {options["modality"], "t2", "seg"}}
    if len({volume.shape for volume in volumes.values()}) > 1:
        raise BadFile("volumes of different shapes", ", ".join(f"{kind} {volume.shape}" for kind, volume in volumes.items()))
    t2 = normalise(volumes["t2"], options["low"], options["high"])
    image = t2 if options["modality"] == "t2" else normalise(volumes[options["modality"]], options["low"], options["high"])
    labels = slice_labels(volumes["seg"])
    ambiguous = ambiguous_slices(labels, options["window"])
    rows, counts = [], {"slices": len(labels), "slices without one brain region of min_area": 0, "slices ambiguous": 0}
    for index in range(len(labels)):
        if not mask_is_brain(brain_mask(t2[index]), options["min_area"]):
            counts["slices without one brain region of min_area"] += 1
            continue
        if ambiguous[index]:
            counts["slices ambiguous"] += 1
            continue
        values = image[index] if not options["size"] else resize_like_skimage(image[index], (options["size"],) * 2)
        path = f"images/{payload['case']}/{payload['case']}_{index:03d}.{options['format']}"
        write_image(context.out / path, round_uint8(values), options["format"])
        rows.append(
            {
                "path": path,
                "label": int(labels[index]),
                "patient_id": payload["case"],
                "slice_index": index,
                "grade": payload["grade"],
                "modality": options["modality"],
                "source": payload["files"][options["modality"]],
            }
        )
    return TaskResult(rows=rows, counts=counts)


PREPARER = register_preparer(
    Preparer(
        name="brats",
        title="BraTS 2018 axial slices (FLAIR), tumour vs none",
        obtain="https://www.med.upenn.edu/sbia/brats2018/data.html (registration; MICCAI_BraTS_2018_Data_Training.zip)",
        source="the training folder: {HGG,LGG}/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz (any depth)",
        options=(
            Option("modality", "flair", "the volume whose slices are written; the brain mask always uses t2", choices=MODALITIES),
            Option("window", 10, "a slice is ambiguous when this many slices from it on mix tumour and no tumour", non_negative_int),
            Option("min_area", 7000, "smallest brain mask, in pixels, of a kept slice", non_negative_int),
            Option("low", 0.1, "lower percentile of the per-volume scaling", float),
            Option("high", 99.9, "upper percentile of the per-volume scaling", float),
            Option("format", "jpg", "jpg: JPEG quality 95 as the authors' cv2.imwrite (lossy); png: lossless", choices=("jpg", "png")),
            size_option(0),
        ),
        plan=plan,
        convert=convert,
        columns=("slice_index", "grade", "modality", "source"),
        doc="docs/datasets/brats.md",
    )
)
