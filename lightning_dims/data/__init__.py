"""Datasets: the registry, image pools, the paper's task/split protocol, the preprocessing spec,
image decoding, the K_F / d_data measurement (a typed ``PropertyReport``), the on-disk property
cache and the LightningDataModule.

``DimsDataModule`` is imported lazily (it pulls in Lightning), so ``lightning-dims measure`` and
``lightning-dims datasets`` start fast.
"""

from lightning_dims.data import brain_tissue, digits, manifest, medmnist_sets, natural, synthetic  # noqa: F401  (register the loaders)
from lightning_dims.data.property_report import PropertyReport
from lightning_dims.data.registry import (
    DATASETS,
    DatasetInfo,
    MissingDatasetError,
    UnknownDatasetError,
    get_dataset,
    register_dataset,
    resolve_data_root,
)
from lightning_dims.data.spec import PreprocessingSpec, SpecMismatchError, preprocess, require_same_spec
from lightning_dims.data.splits import SplitError
from lightning_dims.data.task import DatasetTask

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetTask",
    "DimsDataModule",
    "MissingDatasetError",
    "PreprocessingSpec",
    "PropertyReport",
    "SpecMismatchError",
    "SplitError",
    "UnknownDatasetError",
    "get_dataset",
    "preprocess",
    "register_dataset",
    "require_same_spec",
    "resolve_data_root",
]


def __getattr__(name: str):
    if name == "DimsDataModule":
        from lightning_dims.data.datamodule import DimsDataModule

        return DimsDataModule
    raise AttributeError(f"module 'lightning_dims.data' has no attribute {name!r}")
