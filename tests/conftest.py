"""Shared test fixtures: offline W&B, the real datasets in $LIGHTNING_DIMS_DATA, temp run folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(autouse=True)
def isolated_run_dirs(tmp_path_factory, monkeypatch):
    """W&B, Lightning and the property cache write under a per-test temp dir, never into the checkout or ~/.cache."""
    root = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("WANDB_DIR", str(root))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(root / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(root / "wandb-config"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("LIGHTNING_DIMS_CACHE", str(root / "property-cache"))
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real dataset copies (../shared/data); tests needing them skip when it is not set."""
    root = os.environ.get("LIGHTNING_DIMS_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("LIGHTNING_DIMS_DATA is not set to the shared real-data folder (CI sets it to ../shared/data)")
    return Path(root)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
