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


DATA_ENV = "LIGHTNING_DIMS_DATA"


def running_in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a true value (CI services set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_data_reason() -> str | None:
    """Why the real-data folder is unusable, or None when ``$LIGHTNING_DIMS_DATA`` is a folder."""
    root = os.environ.get(DATA_ENV)
    if not root:
        return f"{DATA_ENV} is not set"
    if not Path(root).is_dir():
        return f"{DATA_ENV}={root} is not a folder"
    return None


def pytest_sessionstart(session):
    """Under CI the real datasets must be there: a missing data folder stops the session before any
    test runs (here, in the controlling process, also under pytest-xdist: a worker cannot stop it)."""
    reason = missing_data_reason()
    if reason is None or not running_in_ci() or hasattr(session.config, "workerinput"):
        return
    pytest.exit(
        f"CI=true but {reason}: the suite needs the real datasets; point {DATA_ENV} at the shared data folder (../shared/data)",
        returncode=pytest.ExitCode.USAGE_ERROR,
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real dataset copies (../shared/data); outside CI, tests needing them skip when it is missing."""
    reason = missing_data_reason()
    if reason is not None:
        message = f"{reason}: point {DATA_ENV} at the shared real-data folder (CI sets it to ../shared/data)"
        if running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(os.environ[DATA_ENV])


@pytest.fixture(autouse=True)
def real_data_marker(request):
    """Tests (or parametrisations) marked ``real_data`` get ``shared_data`` set up, with its skip/CI rule."""
    if request.node.get_closest_marker("real_data") is not None:
        request.getfixturevalue("shared_data")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
