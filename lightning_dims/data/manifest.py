"""Datasets the user prepares on disk: class folders and CSV manifests, and the paper's radiology sets.

Two layouts, both read without touching pixels until a split selects them:

* class folders: ``<dir>/<class name>/**/<image>``; class ids follow the sorted folder names
  (torchvision's ``find_classes``), so ``0/ 1/`` or ``negative/ positive/`` give 0 = negative.
* a CSV manifest: one row per image with a path column (``path``; ``Path``, ``file`` or
  ``filename`` also accepted) relative to the CSV's folder, a ``label`` column, and optionally a
  ``patient_id`` column; with patient ids, train, validation and test never share a patient.

The seven radiology sets of the paper and ISIC use the same two layouts under
``<root>/<name>/``; their manifest may carry either ``label`` (0/1, already the paper's rule) or
the raw column the rule of paper.md §4 is applied to (:data:`RADIOLOGY_SETS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lightning_dims.data.pool import IMAGE_SUFFIXES, FilePool, listing_signature
from lightning_dims.data.registry import get_dataset, register_dataset
from lightning_dims.errors import LightningDimsError
from lightning_dims.utils import digest

__all__ = [
    "MANIFEST_NAME",
    "MURA_STUDY_OUTCOME",
    "OUTSIDE_OPTION",
    "PATH_COLUMNS",
    "PATIENT_COLUMN",
    "PATIENT_FOLDER_PATTERN",
    "PREPARE_SPEC_NAME",
    "RADIOLOGY_SETS",
    "LabelRule",
    "ManifestError",
    "RadiologySet",
    "at_least",
    "check_inside",
    "chexpert_rule",
    "class_folders_present",
    "csv_location",
    "label_codes",
    "load_class_folders",
    "load_csv",
    "load_folder",
    "manifest_or_folders",
    "mura_label",
    "mura_rule",
    "read_manifest",
    "register_radiology",
    "with_preparation_spec",
]

MANIFEST_NAME = "manifest.csv"
PATH_COLUMNS = ("path", "Path", "file", "filename")
PATIENT_COLUMN = "patient_id"
PREPARE_SPEC_NAME = "prepare.json"
"""Sidecar ``lightning-dims prepare`` writes next to the manifest: how the images were made (dataset, options, versions)."""


class ManifestError(LightningDimsError, ValueError):
    """A manifest or folder that exists but cannot be read as a dataset."""


OUTSIDE_OPTION = "allow_outside"
"""Dataset option: accept image files that resolve (symlinks followed) outside the dataset folder."""


def check_inside(paths: list[Path], root: Path, name: str, source: Path, allow_outside: bool) -> None:
    """Refuse files that resolve outside ``root`` (``../`` rows, absolute paths, escaping symlinks)."""
    if allow_outside:
        return
    base = Path(root).resolve()
    for path in paths:
        target = Path(path).resolve()
        if not target.is_relative_to(base):
            outside = sum(not Path(p).resolve().is_relative_to(base) for p in paths)
            raise ManifestError(
                f"{name}: {outside} of {len(paths)} files listed in {source} resolve outside the dataset folder {base} "
                f"(first: {path} -> {target}); keep the images inside it, or allow it with the dataset option "
                f"--data.dataset_options '{{\"{OUTSIDE_OPTION}\": true}}' (measure: --option {OUTSIDE_OPTION}=true)"
            )


def class_folders_present(folder: Path) -> bool:
    return folder.is_dir() and sum(1 for child in folder.iterdir() if child.is_dir()) >= 2


def load_class_folders(folder: Path, name: str, allow_outside: bool = False) -> FilePool:
    """Images under ``folder/<class>/`` (any depth), labelled by sorted class-folder name."""
    from torchvision.datasets.folder import find_classes, make_dataset

    try:
        class_names, class_to_idx = find_classes(str(folder))
        samples = make_dataset(str(folder), class_to_idx, extensions=IMAGE_SUFFIXES, allow_empty=True)
    except FileNotFoundError as error:
        raise get_dataset(name).missing_error(folder.parent if name != "folder" else folder, str(error)) from None
    if len(class_names) < 2:
        raise ManifestError(f"{name}: {folder} needs at least two class folders, found {class_names}")
    counts = np.bincount([label for _, label in samples], minlength=len(class_names))
    if (counts == 0).any():
        empty = [class_names[c] for c in np.flatnonzero(counts == 0)]
        raise ManifestError(f"{name}: class folder(s) {empty} in {folder} hold no images ({', '.join(IMAGE_SUFFIXES)})")
    paths = [Path(path) for path, _ in samples]
    check_inside(paths, folder, name, folder, allow_outside)
    labels = np.asarray([label for _, label in samples], dtype=np.int64)
    return FilePool(labels=labels, class_names=list(class_names), paths=paths, signature=listing_signature(paths, labels, folder))


@dataclass(frozen=True)
class LabelRule:
    """The paper's binary label, from a raw manifest column.

    Attributes:
        column: the raw column (used when the manifest has no ``label`` column).
        positive: maps the column to 1.0 (positive), 0.0 (negative) or NaN (image not used).
        class_names: (negative, positive).
        description: the rule in words (README and ``lightning-dims datasets``).
    """

    column: str
    positive: Callable[[np.ndarray], np.ndarray]
    class_names: tuple[str, str]
    description: str


def at_least(threshold: float) -> Callable[[np.ndarray], np.ndarray]:
    """Numeric column -> 1.0 where >= threshold, 0.0 below, NaN where missing."""

    def rule(values: np.ndarray) -> np.ndarray:
        numbers = np.asarray(values, dtype=np.float64)
        return np.where(np.isnan(numbers), np.nan, (numbers >= threshold).astype(np.float64))

    return rule


def chexpert_rule(values: np.ndarray) -> np.ndarray:
    """CheXpert finding column: 1 positive; 0 or blank negative; -1 (uncertain) not used."""
    numbers = np.asarray(values, dtype=np.float64)
    return np.where(numbers == -1, np.nan, (numbers == 1).astype(np.float64))


PATIENT_FOLDER_PATTERN = r"patient\d+"
"""CheXpert's and MURA's patient folder (``patient00011``): the patient id of every image below it."""

MURA_STUDY_OUTCOME = re.compile(r"_(positive|negative)(?=[/\\])")
"""A folder name ending in MURA's study outcome (``study1_negative/``)."""


def mura_label(path: str) -> int | None:
    """MURA's label of an image path: 1 (abnormal) when its study folder is named ``..._positive``,
    0 (normal) when ``..._negative``, None when no folder is.

    The innermost folder so named decides, so a parent folder's name cannot
    (``patient_negative/study1_positive/image1.png`` is 1, ``patient_positive/study1_negative/...``
    is 0). On MURA's own paths (``MURA-v1.1/train/XR_ELBOW/patient00011/study1_negative/image1.png``,
    where only the study folder names an outcome) this is the authors' rule (``src/dataset.py``:
    0 when the path contains ``negative``, else 1 when it contains ``positive``).
    """
    outcomes = MURA_STUDY_OUTCOME.findall(str(path))
    return int(outcomes[-1] == "positive") if outcomes else None


def mura_rule(paths: np.ndarray) -> np.ndarray:
    """MURA manifest paths -> 1.0 (abnormal), 0.0 (normal), NaN (no study outcome): :func:`mura_label` of each."""
    labels = (mura_label(path) for path in np.asarray(paths, dtype=str))
    return np.asarray([np.nan if label is None else float(label) for label in labels], dtype=np.float64)


def read_manifest(
    csv_path: Path,
    name: str,
    rule: LabelRule | None = None,
    patient_pattern: str | None = None,
    path_template: tuple[str, str] | None = None,
    allow_outside: bool = False,
) -> FilePool:
    """A :class:`FilePool` from a CSV manifest (see the module docstring for the columns).

    ``path_template = (column, template)`` builds the path from another column when there is no
    path column (ISIC 2020's ``image_name`` -> ``train/<image_name>.jpg``). Files must resolve
    inside the CSV's folder unless ``allow_outside``.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(csv_path)
    except pd.errors.EmptyDataError:
        raise ManifestError(f"{name}: {csv_path} is empty; it needs a header (path,label[,patient_id]) and one row per image") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ManifestError(f"{name}: {csv_path} is not a readable CSV ({str(error).strip().splitlines()[0]})") from None
    if frame.empty:
        raise ManifestError(f"{name}: {csv_path} lists no images (only a header); add one row per image")
    path_column = next((column for column in PATH_COLUMNS if column in frame.columns), None)
    if path_column is None and path_template is not None and path_template[0] in frame.columns:
        path_column = "path"
        frame[path_column] = [path_template[1].format(value) for value in frame[path_template[0]]]
    if path_column is None:
        accepted = PATH_COLUMNS + ((path_template[0],) if path_template else ())
        raise ManifestError(f"{name}: {csv_path} has no path column (one of {accepted}); columns: {list(frame.columns)}")
    if "label" in frame.columns:
        raw_labels = frame["label"].to_numpy()
        class_names, labels = label_codes(raw_labels, name, csv_path, binary=rule is not None)
        if rule is not None:
            class_names = list(rule.class_names)
    elif rule is not None and (rule_column := path_column if rule.column == "path" else rule.column) in frame.columns:
        values = rule.positive(frame[rule_column].to_numpy())
        keep = ~np.isnan(values)
        frame, labels, class_names = frame[keep].reset_index(drop=True), values[keep].astype(np.int64), list(rule.class_names)
    else:
        wanted = "a 'label' column" + (f" or the raw column {rule.column!r} ({rule.description})" if rule else "")
        raise ManifestError(f"{name}: {csv_path} needs {wanted}; columns: {list(frame.columns)}")
    paths = [csv_path.parent / str(path) for path in frame[path_column]]
    check_inside(paths, csv_path.parent, name, csv_path, allow_outside)
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise ManifestError(
            f"{name}: {len(missing)} of {len(paths)} files listed in {csv_path} do not exist (first: {missing[0]}); "
            f"paths are relative to {csv_path.parent}"
        )
    groups = None
    if PATIENT_COLUMN in frame.columns:
        groups = frame[PATIENT_COLUMN].astype(str).to_numpy()
    elif patient_pattern is not None:
        found = [re.search(patient_pattern, str(path)) for path in frame[path_column]]
        groups = np.asarray([match.group(0) if match else f"row{row}" for row, match in enumerate(found)])
    return FilePool(
        labels=labels,
        class_names=class_names,
        groups=groups,
        paths=paths,
        signature=listing_signature(paths, labels, csv_path.parent),
    )


def label_codes(values: np.ndarray, name: str, csv_path: Path, binary: bool) -> tuple[list[str], np.ndarray]:
    """Label column -> (class names, int64 ids): integers keep their value order, strings sort by name."""
    import pandas as pd

    if pd.isna(values).any():
        raise ManifestError(f"{name}: {csv_path} has empty 'label' cells; give every row a label or drop it")
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    integral = not numeric.isna().any() and bool((numeric == numeric.round()).all())
    values = numeric.astype(np.int64).to_numpy() if integral else np.asarray(values, dtype=str)
    if binary:
        if not integral or not set(np.unique(values).tolist()) <= {0, 1}:
            raise ManifestError(f"{name}: {csv_path} 'label' must be 0 or 1 (the paper's rule), got {sorted(set(values.tolist()))[:5]}")
        return ["0", "1"], values.astype(np.int64)
    unique = np.unique(values)
    return [str(value) for value in unique], np.searchsorted(unique, values).astype(np.int64)


def with_preparation_spec(pool: FilePool, folder: Path) -> FilePool:
    """Mix ``folder/prepare.json`` (when present) into the pool's signature, so the property cache
    tells apart two preparations of one download (other options, other library versions)."""
    sidecar = Path(folder) / PREPARE_SPEC_NAME
    if sidecar.is_file():
        pool.signature = digest([pool.signature, b"\0", sidecar.read_bytes()], 16)
    return pool


def manifest_or_folders(folder: Path, spec: "RadiologySet", allow_outside: bool = False) -> FilePool:
    """``folder/manifest.csv`` if present, else class sub-folders."""
    name = spec.name
    if (folder / MANIFEST_NAME).is_file():
        pool = read_manifest(
            folder / MANIFEST_NAME, name, spec.rule, spec.patient_pattern, spec.path_template, allow_outside=allow_outside
        )
        return with_preparation_spec(pool, folder)
    if class_folders_present(folder):
        return load_class_folders(folder, name, allow_outside)
    raise get_dataset(name).missing_error(folder.parent)


@register_dataset(
    "folder",
    domain="generic",
    channels=None,
    num_classes=None,
    default_classes="all",
    task="class sub-folders, ids in sorted folder-name order",
    source="your own images (PNG/JPEG/TIFF, 8 or 16 bit, or .npy arrays); point --data-root at the folder",
    layout="<data root>/<class name>/**/<image> (at least two class folders)",
    present=class_folders_present,
    subdir="",
    options={OUTSIDE_OPTION: False},
)
def load_folder(root: Path, classes=None, download: bool = False, allow_outside: bool = False) -> FilePool:
    return load_class_folders(Path(root), "folder", allow_outside)


def csv_location(root: Path) -> Path:
    """The manifest a ``csv`` root names: the file itself, or ``<root>/manifest.csv``."""
    root = Path(root)
    return root if root.suffix.lower() == ".csv" else root / MANIFEST_NAME


@register_dataset(
    "csv",
    domain="generic",
    channels=None,
    num_classes=None,
    default_classes="all",
    task="manifest 'label' column (integers in value order, strings in name order)",
    source="your own CSV manifest; point --data-root at the CSV file (or at a folder holding manifest.csv)",
    layout="a CSV with columns path (relative to the CSV's folder), label, optional patient_id",
    present=lambda root: csv_location(root).is_file(),
    subdir="",
    options={OUTSIDE_OPTION: False},
)
def load_csv(root: Path, classes=None, download: bool = False, allow_outside: bool = False) -> FilePool:
    location = csv_location(root)
    return with_preparation_spec(read_manifest(location, "csv", allow_outside=allow_outside), location.parent)


@dataclass(frozen=True)
class RadiologySet:
    """One of the paper's user-prepared medical datasets."""

    name: str
    title: str
    source: str
    rule: LabelRule
    channels: int = 1
    patient_pattern: str | None = None
    path_template: tuple[str, str] | None = None
    preparable: bool = True
    """``lightning-dims prepare <name>`` makes it from the official download."""


RADIOLOGY_SETS = (
    RadiologySet(
        "brats",
        "BraTS 2018 FLAIR axial slices",
        "https://www.med.upenn.edu/sbia/brats2018/data.html (registration; data use agreement)",
        LabelRule("tumor_voxels", at_least(1), ("no tumour", "tumour"), "tumour vs none: tumor_voxels >= 1 in the slice's segmentation"),
    ),
    RadiologySet(
        "dbc",
        "Duke Breast Cancer MRI (DBC) slices",
        "https://www.cancerimagingarchive.net/collection/duke-breast-cancer-mri/ (TCIA)",
        LabelRule("tumor", at_least(1), ("no tumour", "tumour"), "tumour slice vs not: tumor = 1 when the slice meets the annotated tumour box"),
    ),
    RadiologySet(
        "oai",
        "OAI knee radiographs",
        "https://nda.nih.gov/oai (Osteoarthritis Initiative; data use agreement)",
        LabelRule("kl_grade", at_least(2), ("KL < 2", "KL >= 2"), "Kellgren-Lawrence grade >= 2 vs < 2"),
    ),
    RadiologySet(
        "chexpert",
        "CheXpert chest radiographs",
        "https://stanfordmlgroup.github.io/competitions/chexpert/ (CheXpert-v1.0-small; research use agreement)",
        LabelRule("Pleural Effusion", chexpert_rule, ("no effusion", "pleural effusion"), "pleural effusion (1) vs not (0 or blank); uncertain (-1) dropped"),
        patient_pattern=PATIENT_FOLDER_PATTERN,
    ),
    RadiologySet(
        "mura",
        "MURA musculoskeletal radiographs",
        "https://stanfordmlgroup.github.io/competitions/mura/ (MURA-v1.1; research use agreement)",
        LabelRule("path", mura_rule, ("normal", "abnormal"), "abnormal vs normal, from the study folder name (..._positive / ..._negative)"),
        patient_pattern=PATIENT_FOLDER_PATTERN,
    ),
    RadiologySet(
        "rsna",
        "RSNA intracranial haemorrhage CT slices",
        "https://www.kaggle.com/c/rsna-intracranial-hemorrhage-detection (stage 2 training DICOMs and stage_2_train.csv)",
        LabelRule("any", at_least(1), ("no haemorrhage", "haemorrhage"), "any haemorrhage subtype (the 'any' column = 1) vs none"),
    ),
    RadiologySet(
        "prostate",
        "Prostate-MRI-US-Biopsy slices",
        "https://www.cancerimagingarchive.net/collection/prostate-mri-us-biopsy/ (TCIA)",
        LabelRule("ucla_score", at_least(2), ("UCLA < 2", "UCLA >= 2"), "UCLA score >= 2 vs < 2"),
    ),
    RadiologySet(
        "isic",
        "ISIC 2020 dermoscopy (RGB)",
        "https://challenge2020.isic-archive.com/ (ISIC 2020 training JPEGs and ground-truth CSV)",
        LabelRule("target", at_least(1), ("benign", "melanoma"), "melanoma (target = 1) vs benign"),
        channels=3,
        path_template=("image_name", "train/{}.jpg"),
        preparable=False,
    ),
)


def register_radiology(spec: RadiologySet) -> None:
    def loader(root: Path, classes=None, download: bool = False, allow_outside: bool = False) -> FilePool:
        return manifest_or_folders(Path(root) / spec.name, spec, allow_outside)

    loader.__name__ = f"load_{spec.name}"
    patients = " (patient ids: patient_id column" + (", or parsed from the path" if spec.patient_pattern else "") + ")"
    register_dataset(
        spec.name,
        domain="medical",
        channels=spec.channels,
        num_classes=2,
        default_classes="all",
        task=f"{spec.title}: {spec.rule.description}",
        source=spec.source,
        layout=(
            f"<root>/{spec.name}/{MANIFEST_NAME} with columns path (relative to that folder), and label (0/1) or "
            f"{spec.rule.column!r}, optional patient_id{patients}; or class folders <root>/{spec.name}/0/ and 1/"
            + (f". From the official download: lightning-dims prepare {spec.name} --source DIR --out <root>/{spec.name}" if spec.preparable else "")
        ),
        present=lambda root, name=spec.name: (Path(root) / name / MANIFEST_NAME).is_file()
        or class_folders_present(Path(root) / name),
        options={OUTSIDE_OPTION: False},
    )(loader)


for radiology_set in RADIOLOGY_SETS:
    register_radiology(radiology_set)
