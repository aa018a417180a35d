"""MedMNIST v2 2D sets from their standard ``.npz`` files (Yang et al. 2023; CC BY 4.0).

Each file holds ``{train,val,test}_images`` (N, R, R) or (N, R, R, 3) uint8 and
``{train,val,test}_labels`` (N, 1), or (N, 14) for the multi-label ChestMNIST. The pool is the
three official splits concatenated (pool index = position in train, then val, then test), so the
paper's protocol (class-balanced N, test 750) can be drawn from it; ``official_splits=True``
keeps MedMNIST's own partition instead (each of our splits drawn only from its namesake).
Binary sets keep their label; multi-class sets default to a seeded random class pair;
ChestMNIST becomes "finding present vs absent" for one finding (default 2, effusion, the
closest match to the paper's CheXpert pleural-effusion task).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, ImageFileError, file_signature
from lightning_dims.data.registry import get_dataset, register_dataset

__all__ = [
    "CHEST_FINDINGS",
    "MEDMNIST_SETS",
    "MEDMNIST_SOURCE",
    "MEDMNIST_SPLITS",
    "MedMNISTSet",
    "binary_labels",
    "load_medmnist",
    "npz_path",
    "register_medmnist",
    "split_arrays",
]

MEDMNIST_SPLITS = ("train", "val", "test")
MEDMNIST_SOURCE = (
    "https://zenodo.org/records/10519652 (MedMNIST v2/+, CC BY 4.0), or "
    "medmnist.{Class}(split='train', root='<root>/medmnist', download=True) from the medmnist package"
)
CHEST_FINDINGS = (
    "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
    "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
)  # fmt: skip


@dataclass(frozen=True)
class MedMNISTSet:
    """One MedMNIST 2D set: what its label means."""

    name: str
    channels: int
    class_names: tuple[str, ...]
    modality: str

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2


MEDMNIST_SETS = (
    MedMNISTSet("pneumoniamnist", 1, ("normal", "pneumonia"), "paediatric chest X-ray"),
    MedMNISTSet("breastmnist", 1, ("malignant", "normal, benign"), "breast ultrasound"),
    MedMNISTSet("chestmnist", 1, ("finding absent", "finding present"), "chest X-ray (NIH ChestX-ray14), multi-label"),
    MedMNISTSet("organamnist", 1, ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"), "abdominal CT, axial"),  # noqa: E501
    MedMNISTSet("organcmnist", 1, ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"), "abdominal CT, coronal"),  # noqa: E501
    MedMNISTSet("organsmnist", 1, ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"), "abdominal CT, sagittal"),  # noqa: E501
    MedMNISTSet("octmnist", 1, ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"), "retinal OCT"),
    MedMNISTSet("tissuemnist", 1, tuple(str(c) for c in range(8)), "kidney cortex microscopy"),
    MedMNISTSet("dermamnist", 3, ("actinic keratoses", "basal cell carcinoma", "benign keratosis-like", "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions"), "dermatoscopy"),  # noqa: E501
    MedMNISTSet("bloodmnist", 3, ("basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte", "monocyte", "neutrophil", "platelet"), "blood cell microscopy"),  # noqa: E501
    MedMNISTSet("retinamnist", 3, ("0", "1", "2", "3", "4"), "fundus camera, DR grade (ordinal)"),
    MedMNISTSet("pathmnist", 3, ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma epithelium"), "colon pathology"),  # noqa: E501
)


def npz_path(root: Path, name: str, resolution: int) -> Path:
    """``<root>/medmnist/<name>.npz`` (28 px) or ``<name>_<resolution>.npz`` (MedMNIST+ 64/128/224)."""
    suffix = "" if resolution == 28 else f"_{resolution}"
    return Path(root) / "medmnist" / f"{name}{suffix}.npz"


def binary_labels(labels: np.ndarray, info: MedMNISTSet, finding: int) -> np.ndarray:
    """(N, 1) class labels -> (N,); ChestMNIST's (N, 14) multi-hot -> finding present (1) / absent (0)."""
    if labels.ndim == 2 and labels.shape[1] == len(CHEST_FINDINGS):
        if not 0 <= finding < len(CHEST_FINDINGS):
            raise ValueError(f"{info.name}: finding must be 0..{len(CHEST_FINDINGS) - 1}, got {finding}")
        return labels[:, finding].astype(np.int64)
    return labels.reshape(len(labels), -1)[:, 0].astype(np.int64)


def split_arrays(archive, split: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(<split>_images, <split>_labels)`` of a MedMNIST file; a missing, empty or mismatched split is one
    :class:`~lightning_dims.data.pool.ImageFileError` naming the file and the split."""
    names = (f"{split}_images", f"{split}_labels")
    missing = [name for name in names if name not in archive.files]
    if missing:
        raise ImageFileError(f"{path}: no {' or '.join(missing)} (a MedMNIST file holds train, val and test splits)")
    images, labels = archive[names[0]], archive[names[1]]
    if len(images) == 0 or len(labels) == 0:
        raise ImageFileError(
            f"{path}: the {split} split is empty ({names[0]} {images.shape}, {names[1]} {labels.shape}); a MedMNIST "
            f"file holds images in each of train, val and test: re-download it ({MEDMNIST_SOURCE.split(' ')[0]})"
        )
    if len(images) != len(labels):
        raise ImageFileError(f"{path}: the {split} split has {len(images)} images but {len(labels)} labels")
    return images, labels


def load_medmnist(
    info: MedMNISTSet,
    root: Path,
    classes=None,
    download: bool = False,
    resolution: int = 28,
    official_splits: bool = False,
    finding: int = 2,
) -> ArrayPool:
    """The pool of one MedMNIST set (see the module docstring for the label rule)."""
    path = npz_path(root, info.name, int(resolution))
    if not path.is_file():
        if download:
            import medmnist

            path.parent.mkdir(parents=True, exist_ok=True)
            getattr(medmnist, medmnist.INFO[info.name]["python_class"])(
                split="train", root=str(path.parent), download=True, size=int(resolution)
            )
        else:
            raise get_dataset(info.name).missing_error(root, f"no file {path.name}")
    with np.load(path, allow_pickle=False) as archive:
        splits = {split: split_arrays(archive, split, path) for split in MEDMNIST_SPLITS}
    images = np.concatenate([split_images for split_images, _ in splits.values()])
    labels = np.concatenate([binary_labels(split_labels, info, finding) for _, split_labels in splits.values()])
    counts = [len(split_labels) for _, split_labels in splits.values()]
    class_names = list(info.class_names)
    if info.name == "chestmnist":
        class_names = [f"no {CHEST_FINDINGS[finding]}", CHEST_FINDINGS[finding]]
    return ArrayPool(
        labels=labels,
        class_names=class_names,
        partition=np.repeat(np.asarray(MEDMNIST_SPLITS), counts) if official_splits else None,
        images=images,
        signature=f"{info.name}-{resolution}-" + file_signature(path),
    )


def register_medmnist(info: MedMNISTSet) -> None:
    options = {"resolution": 28, "official_splits": False} | ({"finding": 2} if info.name == "chestmnist" else {})
    if info.name == "chestmnist":
        task = "finding present vs absent (option finding: 0..13, default 2 = effusion)"
    elif info.binary:
        task = f"{info.class_names[1]} (1) vs {info.class_names[0]} (0)"
    else:
        task = f"random pair of {len(info.class_names)} classes"

    def loader(root: Path, classes=None, download: bool = False, **options) -> ArrayPool:
        return load_medmnist(info, root, classes, download, **options)

    loader.__name__ = f"load_{info.name}"
    register_dataset(
        info.name,
        domain="medical",
        channels=info.channels,
        num_classes=len(info.class_names),
        default_classes="all" if info.binary else "pair",
        task=f"{info.modality}: {task}",
        source=MEDMNIST_SOURCE,
        layout=f"<root>/medmnist/{info.name}.npz (28 px; {info.name}_64.npz etc. with option resolution)",
        present=lambda root, name=info.name: any((Path(root) / "medmnist").glob(f"{name}*.npz")),
        subdir="medmnist",
        options=options,
    )(loader)


for medmnist_set in MEDMNIST_SETS:
    register_medmnist(medmnist_set)
