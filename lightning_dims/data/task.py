"""A dataset task without Lightning: dataset + classes + splits + spec, and its fingerprints.

:class:`DatasetTask` is what both ``lightning-dims measure`` (which must start without importing
Lightning) and :class:`~lightning_dims.data.datamodule.DimsDataModule` build on, so that a
measurement and a training run with the same arguments see exactly the same training images.
Decoding lives in :mod:`~lightning_dims.data.decode`, the K_F / d_data measurement in
:mod:`~lightning_dims.data.measurement` (:meth:`DatasetTask.properties` is its entry point).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from lightning_dims.data import property_cache
from lightning_dims.data.decode import image_channels, load_split
from lightning_dims.data.file_digests import files_digest
from lightning_dims.data.measurement import d_data_options, measure_properties
from lightning_dims.data.pool import ImagePool
from lightning_dims.data.registry import DatasetInfo, get_dataset, resolve_data_root
from lightning_dims.data.spec import PreprocessingSpec
from lightning_dims.data.splits import SPLITS, draw_splits, resolve_classes, task_labels
from lightning_dims.utils import canonical_json, digest

__all__ = ["DatasetTask"]


class DatasetTask:
    """One dataset turned into the paper's classification task and splits.

    Args:
        name: registry name (``lightning-dims datasets`` lists them).
        classes: original class ids of the task, ``classes[i]`` -> label ``i``; None: the
            dataset's default (a seeded random pair for natural sets, all classes otherwise).
        train_size, val_size, test_size: images per split, class-balanced.
        size, channels, intensity: the preprocessing spec (channels None: the dataset's native 1 or 3).
        seed: class pair and split draws.
        data_root: folder holding the dataset (default ``$LIGHTNING_DIMS_DATA``, else ``./data``);
            for ``folder`` and ``csv`` the dataset itself.
        download: let torchvision download a missing natural dataset into ``data_root``.
        options: dataset-specific options (``lightning-dims datasets`` shows them), e.g. ``{"d": 8}``.
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
        data_root: str | Path | None = None,
        download: bool = False,
        options: dict | None = None,
    ):
        self.info: DatasetInfo = get_dataset(name)
        unknown = sorted(set(options or {}) - set(self.info.options))
        if unknown:
            known = ", ".join(sorted(self.info.options)) or "none"
            raise ValueError(f"dataset {name!r} has no option(s) {unknown}; its options: {known}")
        for split, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            if value < 0:
                raise ValueError(f"{split} must be >= 0, got {value}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None (the dataset's native channels), got {channels}")
        self.name = name
        self.requested_classes = None if classes is None else [int(c) for c in classes]
        self.sizes = {"train": int(train_size), "val": int(val_size), "test": int(test_size)}
        self.requested_channels = channels
        self.size = size
        self.intensity = intensity
        self.seed = int(seed)
        self.root = resolve_data_root(data_root)
        self.download = download
        self.options = {**self.info.options, **(options or {})}
        try:  # validate early, in one line
            PreprocessingSpec(size=size, channels=channels or 1, intensity=intensity)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ValueError(f"invalid preprocessing spec: {problems}") from None
        self._pool: ImagePool | None = None
        self._classes: list[int] | None = None
        self._labels: np.ndarray | None = None
        self._indices: dict[str, np.ndarray] | None = None
        self._native_channels: int | None = self.info.channels
        self._images: dict[str, torch.Tensor] = {}

    # ---- facts available without reading pixels -------------------------------------------------
    @property
    def domain(self) -> str:
        return self.info.domain

    @property
    def in_chans(self) -> int:
        """Channels of the preprocessed images."""
        if self.requested_channels is not None:
            return self.requested_channels
        if self._native_channels is None:
            pool = self.pool()
            self._native_channels = image_channels(pool.read([0])[0]) if len(pool) else 1
        return self._native_channels

    @property
    def spec(self) -> PreprocessingSpec:
        return PreprocessingSpec(size=self.size, channels=self.in_chans, intensity=self.intensity)

    @property
    def num_classes(self) -> int:
        if self.requested_classes is not None:
            return len(self.requested_classes)
        if self.info.default_classes == "pair":
            return 2
        return len(self.classes)

    @property
    def classes(self) -> list[int]:
        """Original class ids of the task, in label order."""
        if self._classes is None:
            total = self.info.num_classes
            if total is None:  # folder / csv: counted from the files
                total = len(self.pool().class_names)
            self._classes = resolve_classes(self.requested_classes, self.info.default_classes, total, self.seed, self.name)
        return self._classes

    # ---- loading and splitting ---------------------------------------------------------------------
    def pool(self) -> ImagePool:
        """The dataset's image pool (labels in memory, pixels on demand); loads once."""
        if self._pool is None:
            if not self.info.is_present(self.root) and not self.download:
                raise self.info.missing_error(self.root)
            wanted = None
            if self.info.num_classes is not None and self.info.default_classes == "pair":
                wanted = self.classes  # lets loaders skip unused classes (ImageNet folders)
            self._pool = self.info.loader(self.root, classes=wanted, download=self.download, **self.options)
        return self._pool

    def setup(self) -> "DatasetTask":
        """Resolve classes and draw the splits (idempotent)."""
        if self._indices is None:
            pool = self.pool()
            self._labels = task_labels(pool.labels, self.classes)
            self._indices = draw_splits(
                self._labels,
                self.sizes,
                self.seed,
                len(self.classes),
                groups=pool.groups,
                partition=pool.partition,
                name=self.name,
                class_names=self.class_names,
            )
        return self

    def indices(self, split: str) -> np.ndarray:
        """Indices into the pool of the ``train``/``val``/``test`` images (sorted)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.setup()._indices[split]

    def labels(self, split: str) -> torch.Tensor:
        """(n,) int64 task labels of a split."""
        return torch.from_numpy(self.setup()._labels[self.indices(split)])

    def images(self, split: str, threads: int | None = None, progress: bool | None = False) -> torch.Tensor:
        """(n, C, S, S) float32 preprocessed images of a split, read once and kept (treat as read-only).

        The first call decodes and preprocesses (:func:`load_split`, on ``threads`` threads with an
        optional progress bar); later calls, e.g. the K_F / d_data measurement of the training set a
        run trains on, return the same tensor.
        """
        if split not in self._images:
            desc = f"{self.name} {split}"
            self._images[split] = load_split(self.pool(), self.indices(split), self.spec, threads, progress, desc)
        return self._images[split]

    def task_name(self) -> str:
        """A short name of the task: dataset, class pair and non-default options (``mnist-3v8``, ``synthetic-d4``).

        Class ids appear when the task is a choice among more classes (natural pairs, explicit
        classes); options when they differ from the dataset's defaults.
        """
        parts = [self.name]
        if self.info.default_classes == "pair" or self.requested_classes is not None:
            parts.append("v".join(str(c) for c in self.classes))
        changed = {key: value for key, value in self.options.items() if self.info.options.get(key) != value}
        parts += [f"{key}{value}" for key, value in sorted(changed.items())]
        return "-".join(str(part) for part in parts)

    @property
    def class_names(self) -> list[str]:
        names = self.pool().class_names
        return [names[c] for c in self.classes]

    def describe(self) -> dict:
        """What the task is: dataset, domain, classes, split sizes, spec, seed, source signature."""
        self.setup()
        spec = self.spec
        return {
            "dataset": self.name,
            "task": self.task_name(),
            "domain": self.domain,
            "options": dict(self.options),
            "classes": list(self.classes),
            "class_names": self.class_names,
            "split_sizes": {split: int(len(self.indices(split))) for split in ("train", "val", "test")},
            "seed": self.seed,
            "preprocessing": spec.model_dump() | {"key": spec.key()},
            "source": self.pool().signature,
        }

    # ---- identity and properties ------------------------------------------------------------------
    def split_files_digest(self, splits: tuple[str, ...] = SPLITS) -> str | None:
        """Content digest of the files behind ``splits`` (None for pools that are not one file per image)."""
        pool = self.pool()
        indices = np.unique(np.concatenate([self.indices(split) for split in splits]))
        files = pool.files(indices)
        return None if files is None else files_digest(files)

    def data_fingerprint(self) -> str:
        """16 hex digits identifying the images and labels this task reads (its part of ``config_hash``).

        The dataset, its options and source signature, the classes, every split's indices, and for
        file datasets the content of every file a split uses: a changed pixel changes it.
        """
        self.setup()
        payload = {
            "dataset": self.name,
            "options": self.options,
            "source": self.pool().signature,
            "classes": self.classes,
            "splits": {split: self.indices(split).tolist() for split in SPLITS},
            "contents": self.split_files_digest(),
        }
        return digest(canonical_json(payload), 16)

    def property_fingerprint(self, m: int, k: int, estimator: str, kf_mode: str, options: dict | None = None) -> str:
        """Fingerprint of (dataset, options, source, classes, training indices and file contents, spec, estimator options)."""
        self.setup()
        return property_cache.fingerprint(
            {
                "dataset": self.name,
                "options": self.options,
                "source": self.pool().signature,
                "classes": self.classes,
                "train_indices": self.indices("train").tolist(),
                "train_contents": self.split_files_digest(("train",)),
                "spec": self.spec.model_dump(),
                "estimator": {
                    "name": estimator,
                    "k": k,
                    "m": m,
                    "kf_mode": kf_mode,
                    "kf_seed": self.seed,
                    "options": d_data_options(estimator, k, options),
                },
            }
        )

    def sample_names(self, split: str, positions) -> list[str]:
        """Human names of samples of a split (file paths, else ``<dataset>[pool index]``), by position in the split."""
        pool_indices = self.indices(split)[np.asarray(positions, dtype=np.int64)]
        files = self.pool().files(pool_indices)
        if files is not None:
            return [str(path) for path in files]
        return [f"{self.name}[{int(index)}]" for index in pool_indices]

    properties = measure_properties
    """K_F and d_data of the training set, from the cache when this exact set was measured before: a
    :class:`~lightning_dims.data.property_report.PropertyReport`
    (:func:`~lightning_dims.data.measurement.measure_properties`, with this task as ``task``)."""
