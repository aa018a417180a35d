"""The dataset registry: every name a user can pass to ``--dataset`` / ``--data.name``.

timm-style: a loader registers itself with :func:`register_dataset`; code looks datasets up in
:data:`DATASETS` and never branches on names. A loader turns a data root into an
:class:`~lightning_dims.data.pool.ImagePool`; the task (class pair, splits, spec) is built on top
of the pool by :mod:`lightning_dims.data.task`, identically for every dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from lightning_dims.data.pool import ImagePool
from lightning_dims.errors import LightningDimsError

__all__ = [
    "DATASETS",
    "DATA_ROOT_ENV",
    "DEFAULT_DATA_ROOT",
    "DatasetInfo",
    "Loader",
    "MissingDatasetError",
    "UnknownDatasetError",
    "get_dataset",
    "register_dataset",
    "resolve_data_root",
]

DATA_ROOT_ENV = "LIGHTNING_DIMS_DATA"
DEFAULT_DATA_ROOT = Path("data")
"""Where datasets are looked for when neither ``data_root`` nor ``$LIGHTNING_DIMS_DATA`` is given (relative to the working directory)."""

Loader = Callable[..., ImagePool]
"""``loader(root: Path, classes: list[int] | None, download: bool, **options) -> ImagePool``."""


class MissingDatasetError(LightningDimsError, FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says where to get them."""


class UnknownDatasetError(LightningDimsError, ValueError):
    """A name that is not in the registry."""


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset.

    Attributes:
        name: registry name.
        domain: ``natural``, ``medical``, ``synthetic`` or ``generic`` (user data).
        channels: native channels (1 or 3); None when read from the files (folder, csv).
        num_classes: number of original classes; None when read from the files.
        default_classes: ``pair`` (no classes given: draw a random pair from the seed, the
            paper's natural-image protocol) or ``all`` (use every class: binary sets, user data).
        task: one line: what the label means.
        source: where to obtain the data.
        layout: the expected on-disk layout below the data root.
        loader: see :data:`Loader`.
        present: ``present(root) -> bool``: are the files there (no pixels read).
        subdir: folder below the data root that holds the files ("" = the root itself, as for
            ``folder`` and ``csv`` where the root *is* the dataset).
        embedded: ships with the dependencies (works offline, no data root needed).
        options: dataset-specific loader options and their defaults (e.g. synthetic's ``d``).
    """

    name: str
    domain: Literal["natural", "medical", "synthetic", "generic"]
    channels: int | None
    num_classes: int | None
    default_classes: Literal["pair", "all"]
    task: str
    source: str
    layout: str
    loader: Loader
    present: Callable[[Path], bool]
    subdir: str = ""
    embedded: bool = False
    options: dict = field(default_factory=dict)

    def folder(self, root: Path) -> Path:
        """The folder this dataset's files are looked for in."""
        return Path(root) / self.subdir if self.subdir else Path(root)

    def is_present(self, root: Path | None) -> bool:
        if self.embedded:
            return True
        return root is not None and bool(self.present(Path(root)))

    def missing_error(self, root: Path, detail: str = "") -> MissingDatasetError:
        """The one error for absent data: what, where looked, which layout, where to get it."""
        looked = self.folder(root).absolute()
        hint = "" if self.subdir == "" else f"; pass --data-root DIR (or set ${DATA_ROOT_ENV}) to look elsewhere"
        detail = f" ({detail})" if detail else ""
        return MissingDatasetError(
            f"dataset {self.name!r} not found in {looked}{detail}. Expected layout: {self.layout}. "
            f"Get it from: {self.source}{hint}"
        )


DATASETS: dict[str, DatasetInfo] = {}
"""name -> :class:`DatasetInfo`, filled by :func:`register_dataset` as loader modules are imported."""


def register_dataset(
    name: str,
    *,
    domain: str,
    channels: int | None,
    num_classes: int | None,
    default_classes: str,
    task: str,
    source: str,
    layout: str,
    present: Callable[[Path], bool] | None = None,
    subdir: str | None = None,
    embedded: bool = False,
    options: dict | None = None,
) -> Callable[[Loader], Loader]:
    """Decorator registering ``loader`` under ``name`` (see :class:`DatasetInfo` for the fields).

    ``subdir`` defaults to ``name``; ``present`` defaults to "the subdir exists".
    """

    def decorate(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered (by {DATASETS[name].loader.__module__})")
        folder = name if subdir is None else subdir
        DATASETS[name] = DatasetInfo(
            name=name,
            domain=domain,
            channels=channels,
            num_classes=num_classes,
            default_classes=default_classes,
            task=task,
            source=source,
            layout=layout,
            loader=loader,
            present=present or (lambda root, folder=folder: (Path(root) / folder).is_dir()),
            subdir=folder,
            embedded=embedded,
            options=dict(options or {}),
        )
        return loader

    return decorate


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset ``name``; a one-line error listing the names otherwise."""
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """``data_root`` if given, else ``$LIGHTNING_DIMS_DATA``, else ``./data``."""
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_ROOT
