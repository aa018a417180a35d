"""Natural-image datasets through torchvision's own dataset classes (paper: MNIST, CIFAR-10, SVHN, ImageNet).

The pool is the official training split (paper.md §4: "images from the train split"); the task's
train/val/test sets are drawn from it, disjoint. Files are read from ``<data root>`` exactly as
torchvision lays them out; nothing is downloaded unless ``download=True``. File presence is
checked, not md5 (hashing CIFAR-10's 180 MB on every run buys nothing); torchvision still
verifies checksums of what it downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_dims.data.pool import ArrayPool, FilePool, file_signature, listing_signature
from lightning_dims.data.registry import get_dataset, register_dataset

__all__ = [
    "CIFAR_FOLDER",
    "IDX_FILES",
    "MNIST_LAYOUT",
    "idx_present",
    "load_cifar10",
    "load_fashionmnist",
    "load_idx_dataset",
    "load_imagenet",
    "load_mnist",
    "load_svhn",
]

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def idx_present(folder: str):
    """``present(root)`` for MNIST-style raw idx files under ``<root>/<folder>/raw``."""
    return lambda root: all((Path(root) / folder / "raw" / name).is_file() for name in IDX_FILES)


def load_idx_dataset(dataset_class, name: str, root: Path, download: bool) -> ArrayPool:
    """MNIST-format training split via torchvision's class (``root/<Class>/raw/*-ubyte``)."""
    try:
        dataset = dataset_class(root=str(root), train=True, download=download)
    except RuntimeError as error:
        raise get_dataset(name).missing_error(root, str(error)) from None
    raw = Path(dataset.raw_folder)
    return ArrayPool(
        labels=dataset.targets.numpy().astype(np.int64),
        class_names=list(dataset.classes),
        images=dataset.data.numpy(),
        signature=f"{name}-" + file_signature(*(raw / file for file in IDX_FILES)),
    )


MNIST_LAYOUT = "<root>/{folder}/raw/{{train-images-idx3-ubyte, train-labels-idx1-ubyte}} (torchvision layout, uncompressed)"


@register_dataset(
    "mnist",
    domain="natural",
    channels=1,
    num_classes=10,
    default_classes="pair",
    task="random digit pair (paper: 5 pairs per dataset)",
    source="http://yann.lecun.com/exdb/mnist/ or torchvision.datasets.MNIST(root, download=True) (--download)",
    layout=MNIST_LAYOUT.format(folder="MNIST"),
    present=idx_present("MNIST"),
    subdir="MNIST",
)
def load_mnist(root: Path, classes: list[int] | None = None, download: bool = False) -> ArrayPool:
    from torchvision.datasets import MNIST

    return load_idx_dataset(MNIST, "mnist", root, download)


@register_dataset(
    "fashionmnist",
    domain="natural",
    channels=1,
    num_classes=10,
    default_classes="pair",
    task="random clothing-class pair",
    source="https://github.com/zalandoresearch/fashion-mnist or torchvision.datasets.FashionMNIST (--download)",
    layout=MNIST_LAYOUT.format(folder="FashionMNIST"),
    present=idx_present("FashionMNIST"),
    subdir="FashionMNIST",
)
def load_fashionmnist(root: Path, classes: list[int] | None = None, download: bool = False) -> ArrayPool:
    from torchvision.datasets import FashionMNIST

    return load_idx_dataset(FashionMNIST, "fashionmnist", root, download)


CIFAR_FOLDER = "cifar-10-batches-py"


@register_dataset(
    "cifar10",
    domain="natural",
    channels=3,
    num_classes=10,
    default_classes="pair",
    task="random class pair (RGB)",
    source="https://www.cs.toronto.edu/~kriz/cifar.html (python version) or torchvision.datasets.CIFAR10 (--download)",
    layout=f"<root>/{CIFAR_FOLDER}/{{data_batch_1..5, batches.meta}} (the extracted python-pickle archive)",
    present=lambda root: (Path(root) / CIFAR_FOLDER / "data_batch_1").is_file(),
    subdir=CIFAR_FOLDER,
)
def load_cifar10(root: Path, classes: list[int] | None = None, download: bool = False) -> ArrayPool:
    from torchvision.datasets import CIFAR10

    class PresentCIFAR10(CIFAR10):
        meta = {**CIFAR10.meta, "md5": None}  # torchvision's check_integrity(path, None) tests presence

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list)

    try:
        dataset = PresentCIFAR10(root=str(root), train=True, download=download)
    except RuntimeError as error:
        raise get_dataset("cifar10").missing_error(root, str(error)) from None
    folder = Path(root) / CIFAR_FOLDER
    return ArrayPool(
        labels=np.asarray(dataset.targets, dtype=np.int64),
        class_names=list(dataset.classes),
        images=dataset.data,  # (N, 32, 32, 3) uint8
        signature="cifar10-" + file_signature(*(folder / name for name, _ in CIFAR10.train_list)),
    )


@register_dataset(
    "svhn",
    domain="natural",
    channels=3,
    num_classes=10,
    default_classes="pair",
    task="random house-number digit pair (RGB; label 10 of the .mat is digit 0)",
    source="http://ufldl.stanford.edu/housenumbers/ (format 2, train_32x32.mat) or torchvision.datasets.SVHN (--download)",
    layout="<root>/svhn/train_32x32.mat (the cropped-digits MATLAB file)",
    present=lambda root: (Path(root) / "svhn" / "train_32x32.mat").is_file(),
    subdir="svhn",
)
def load_svhn(root: Path, classes: list[int] | None = None, download: bool = False) -> ArrayPool:
    from torchvision.datasets import SVHN

    class PresentSVHN(SVHN):
        def _check_integrity(self) -> bool:
            return os.path.isfile(os.path.join(self.root, self.filename))

    folder = Path(root) / "svhn"
    try:
        dataset = PresentSVHN(root=str(folder), split="train", download=download)
    except RuntimeError as error:
        raise get_dataset("svhn").missing_error(root, str(error)) from None
    return ArrayPool(
        labels=np.asarray(dataset.labels, dtype=np.int64),
        class_names=[str(digit) for digit in range(10)],
        images=dataset.data,  # (N, 3, 32, 32) uint8
        signature="svhn-" + file_signature(folder / "train_32x32.mat"),
    )


@register_dataset(
    "imagenet",
    domain="natural",
    channels=3,
    num_classes=1000,
    default_classes="pair",
    task="random pair of the 1000 ILSVRC-2012 classes (class id = position of the wnid folder in sorted order)",
    source="https://image-net.org/download (ILSVRC2012_img_train.tar, account required; no automatic download)",
    layout="<root>/imagenet/train/<wnid>/*.JPEG (1000 wnid folders, the usual extracted layout)",
    present=lambda root: (Path(root) / "imagenet" / "train").is_dir(),
)
def load_imagenet(root: Path, classes: list[int] | None = None, download: bool = False) -> FilePool:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    train = Path(root) / "imagenet" / "train"
    if not train.is_dir():
        raise get_dataset("imagenet").missing_error(root)
    wnids, _ = find_classes(str(train))
    if len(wnids) != 1000:
        raise get_dataset("imagenet").missing_error(root, f"found {len(wnids)} class folders in {train}, expected 1000")
    wanted = range(len(wnids)) if classes is None else classes
    # scan only the wanted class folders: listing all 1.28M files takes minutes
    samples = make_dataset(str(train), {wnids[c]: c for c in wanted}, extensions=IMG_EXTENSIONS)
    paths = [Path(path) for path, _ in samples]
    labels = np.asarray([label for _, label in samples], dtype=np.int64)
    return FilePool(
        labels=labels,
        class_names=list(wnids),
        paths=paths,
        signature="imagenet-" + listing_signature(paths, labels, train),
    )
