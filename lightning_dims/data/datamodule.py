"""``DimsDataModule``: one LightningDataModule for every registered dataset.

Batches are ``(x, y)``: ``x`` float32 (B, C, S, S) preprocessed by :attr:`DimsDataModule.spec`
(the paper's default: per-image max scaled to 255, 224 x 224, native channels), ``y`` int64
(B,) task labels (``classes[i]`` -> ``i``). The splits and the K_F / d_data of the training set
come from :class:`~lightning_dims.data.task.DatasetTask`, so ``lightning-dims measure`` with the
same arguments measures exactly the images a run trains on.

The data path: a run's images (at most a few thousand) are decoded, resized and scaled **once**
(:meth:`DatasetTask.images`, files decoded in parallel) into one tensor per split, moved once to
the training device (channels-last on CUDA); a batch is an index gather from it
(:class:`ResidentSplit`), an epoch a permutation drawn from ``(seed, epoch)``
(:class:`EpochShuffleSampler`). No file is read and nothing is resized after setup, and no
loader worker processes are needed.
"""

from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
from typing_extensions import override

from lightning_dims.data.measurement import CacheMode
from lightning_dims.data.property_report import PropertyReport
from lightning_dims.data.spec import PreprocessingSpec
from lightning_dims.data.splits import SPLITS, require_evaluation_sets
from lightning_dims.data.task import DatasetTask
from lightning_dims.seeds import epoch_seed

__all__ = ["SPLIT_NAMES", "DimsDataModule", "EpochShuffleSampler", "ResidentSplit", "gathered_batch", "on_device"]

SPLIT_NAMES = ("train", "val", "test")

# Lightning suggests loader workers for a loader without them; ours gather batches from memory
# (the filter Lightning's warnings guide gives for this message).
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


class ResidentSplit(Dataset):
    """A split's preprocessed images (N, C, S, S) and labels (N,), each one tensor on one device.

    ``__getitems__`` (which :class:`~torch.utils.data.DataLoader` and ``Subset`` call with a whole
    batch of indices) gathers the batch in one indexing operation on that device; advanced
    indexing keeps the images' memory format (channels-last stays channels-last).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[item], self.labels[item]

    def __getitems__(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(items, dtype=torch.long).to(self.images.device, non_blocking=True)
        return self.images[index], self.labels[index]


def gathered_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """DataLoader ``collate_fn`` for :class:`ResidentSplit`: the batch is already gathered."""
    return batch


def on_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``images`` moved to ``device``; channels-last on CUDA (what cuDNN's convolutions prefer), as is elsewhere."""
    images = images.to(device)
    if device.type == "cuda" and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


class EpochShuffleSampler(RandomSampler):
    """The training order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone.

    Lightning calls :meth:`set_epoch` before every training epoch, so a run resumed at epoch ``e``
    sees the batches an uninterrupted run sees. Being a ``RandomSampler``, it is replaced under
    DDP by Lightning's ``DistributedSampler`` (which shuffles by seed and epoch as well).
    """

    def __init__(self, data_source, seed: int):
        super().__init__(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class DimsDataModule(L.LightningDataModule):
    """The paper's binary-task data for any registered dataset.

    Args:
        name: registry name (``lightning-dims datasets``).
        classes: original class ids, ``classes[i]`` -> label ``i``; None: a seeded random pair
            for natural sets, the dataset's own (binary) label for medical and embedded sets.
        train_size: class-balanced training images (paper: 500 .. 1750).
        val_size: class-balanced validation images.
        test_size: class-balanced test images, disjoint from train/val (paper: 750); drawn
            before the others, so for one seed it does not change with ``train_size``.
        size: square side in pixels (paper: 224); None keeps the native size.
        channels: 1 or 3; None: the dataset's native channels.
        intensity: ``max255`` (paper), ``max1`` or ``raw``.
        seed: class pair, splits and training-batch order.
        batch_size: images per batch.
        num_workers: threads that decode image files once at setup (0: every usable core); batches
            are gathered in the training process itself, so no loader workers are started.
        data_root: folder holding the datasets (default ``$LIGHTNING_DIMS_DATA``, else ``./data``);
            for ``folder``/``csv`` the dataset itself.
        download: let torchvision download a missing natural dataset.
        dataset_options: dataset-specific options, e.g. ``{"d": 8, "contrast": 0.2}`` for ``synthetic``.
    """

    def __init__(
        self,
        name: str = "digits",
        classes: list[int] | None = None,
        train_size: int = 500,
        val_size: int = 200,
        test_size: int = 750,
        size: int | None = 224,
        channels: int | None = None,
        intensity: str = "max255",
        seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        data_root: str | None = None,
        download: bool = False,
        dataset_options: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.task = DatasetTask(
            name=name,
            classes=classes,
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            size=size,
            channels=channels,
            intensity=intensity,
            seed=seed,
            data_root=data_root,
            download=download,
            options=dataset_options,
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self._resident: dict[tuple[str, str], ResidentSplit] = {}

    # ---- available right after construction ------------------------------------------------------
    @property
    def name(self) -> str:
        return self.task.name

    @property
    def in_chans(self) -> int:
        return self.task.in_chans

    @property
    def num_classes(self) -> int:
        return self.task.num_classes

    @property
    def spec(self) -> PreprocessingSpec:
        return self.task.spec

    @property
    def domain(self) -> str:
        return self.task.domain

    # ---- Lightning hooks ---------------------------------------------------------------------------
    @override
    def prepare_data(self) -> None:
        """Check the files are there (download them when ``download=True`` and the loader can)."""
        self.task.pool()

    @override
    def setup(self, stage: str | None = None) -> None:
        """Draw the splits (no pixels are read here: that happens once, when a loader first asks).

        Raises:
            SplitError: a validation or test set asked for came out empty (the pool is too small).
        """
        self.task.setup()
        require_evaluation_sets(self.task.sizes, {split: len(self.task.indices(split)) for split in SPLITS}, self.name)

    def device(self) -> torch.device:
        """The training device: the trainer's (this rank's) root device, the CPU before a trainer is attached."""
        trainer = getattr(self, "trainer", None)
        return torch.device("cpu") if trainer is None else trainer.strategy.root_device

    def resident(self, split: str) -> ResidentSplit:
        """The split's images and labels on the training device (moved there once per device)."""
        device = self.device()
        key = (split, str(device))
        if key not in self._resident:
            from lightning.pytorch.utilities import rank_zero_only

            progress = None if rank_zero_only.rank == 0 else False  # a bar on rank 0's terminal
            images = self.task.images(split, threads=self.num_workers or None, progress=progress)
            images = on_device(images, device)
            self._resident[key] = ResidentSplit(images, self.task.labels(split).to(device))
        return self._resident[key]

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.resident(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(dataset, self.seed) if shuffle else None,
            collate_fn=gathered_batch,
        )

    @override
    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)

    @override
    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)

    # ---- after setup ----------------------------------------------------------------------------
    @property
    def train_indices(self) -> np.ndarray:
        return self.task.indices("train")

    @property
    def val_indices(self) -> np.ndarray:
        return self.task.indices("val")

    @property
    def test_indices(self) -> np.ndarray:
        return self.task.indices("test")

    @property
    def class_names(self) -> list[str]:
        return self.task.class_names

    @property
    def classes(self) -> list[int]:
        """Original class ids of the task, in label order."""
        return self.task.classes

    def describe(self) -> dict:
        """Dataset, domain, classes, split sizes, spec and seed (for results records)."""
        return self.task.describe()

    def split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (n, C, S, S) and labels (n,) of a split, preprocessed, in index order."""
        return self.task.images(split), self.task.labels(split)

    def dataset_properties(
        self,
        m: int = 1000,
        k: int = 20,
        estimator: str = "mle",
        kf_mode: str = "exhaustive",
        cache: CacheMode = "use",
        estimator_options: dict | None = None,
    ) -> PropertyReport:
        """K_F and d_data of the exact training set (cached on disk); see :meth:`DatasetTask.properties`."""
        return self.task.properties(
            m=m, k=k, estimator=estimator, kf_mode=kf_mode, cache=cache, estimator_options=estimator_options
        )

    def data_fingerprint(self) -> str:
        """Identity of the images and labels of every split (see :meth:`DatasetTask.data_fingerprint`)."""
        return self.task.data_fingerprint()
