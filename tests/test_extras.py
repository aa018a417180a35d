"""Packaging: one version string, the licence, ``py.typed``, and a small core whose extras are optional:
the core API imports with every extra's packages hidden, and a missing extra is one line naming its install."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lightning_dims
from lightning_dims.cli import user_errors
from lightning_dims.errors import EXTRAS, MissingExtraError, missing_extra
from tests.helpers.processes import child_env

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
CORE = {"torch", "torchvision", "lightning", "numpy", "scipy", "scikit-dimension", "pydantic", "pyyaml", "threadpoolctl", "tqdm", "pillow"}
DISTRIBUTION = {"wandb_workspaces": "wandb-workspaces"}  # module -> distribution where the names differ
FEATURES = ("train", "wandb", "sweeps", "attacks", "medical")

HIDE_EXTRAS = """
import sys
HIDDEN = set(sys.argv[1].split(","))

class Hide:  # as if the extras were not installed: every finder answers None for them
    def __init__(self, finder):
        self.finder = finder
    def __getattr__(self, name):
        return getattr(self.finder, name)
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
import torch
import lightning_dims
from torch.utils.data import DataLoader, TensorDataset
from lightning_dims.callbacks import DataPropertiesCallback, ReprDimCallback
torch.manual_seed(0)
x = torch.randn(300, 4) @ torch.randn(4, 30)
print(lightning_dims.intrinsic_dimension(x, k=20).dimension, lightning_dims.label_sharpness(x, torch.arange(300) % 2).value)
model = torch.nn.Sequential(torch.nn.Linear(30, 30), torch.nn.Tanh(), torch.nn.Linear(30, 2))
(estimate,) = lightning_dims.representation_dimension(model, DataLoader(TensorDataset(x, torch.arange(300) % 2), batch_size=100), layers=["1"])
print(estimate.layer, estimate.value)
print(sorted({name.partition(".")[0] for name in sys.modules} & HIDDEN))
try:
    import wandb
except ModuleNotFoundError as error:
    print(type(error).__name__, error.name)
"""


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_one_version_string_from_the_package():
    assert "version" not in PYPROJECT and PYPROJECT["dynamic"] == ["version"]
    dynamic = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "lightning_dims.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", lightning_dims.__version__)


def test_licence_classifiers_and_typed_marker():
    assert PYPROJECT["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    assert "Typing :: Typed" in PYPROJECT["classifiers"] and "License :: OSI Approved :: MIT License" not in PYPROJECT["classifiers"]
    assert (REPO / "lightning_dims" / "py.typed").is_file()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lightning_dims"]
    assert "py.typed" in package_data


def test_a_small_core_and_one_extra_per_feature():
    assert names(PYPROJECT["dependencies"]) == CORE
    extras = PYPROJECT["optional-dependencies"]
    assert set(FEATURES) | {"all", "dev"} == set(extras)
    assert extras["all"] == [f"lightning-dims[{','.join(FEATURES)}]"]
    for module, extra in EXTRAS.items():
        assert DISTRIBUTION.get(module, module) in names(extras[extra]), f"{module} is not in the {extra!r} extra"
        assert DISTRIBUTION.get(module, module) not in CORE
    assert 'pip install --quiet -e ".[all,dev]"' in (REPO / "scripts" / "setup.sh").read_text()  # the quick start


def test_a_missing_extra_is_one_line_naming_its_install(capsys):
    error = missing_extra(ModuleNotFoundError("No module named 'foolbox'", name="foolbox"))
    assert isinstance(error, MissingExtraError) and isinstance(error, ModuleNotFoundError)
    assert str(error) == (
        "foolbox is not installed; it comes with the 'attacks' extra: pip install 'lightning-dims[attacks]' (or 'lightning-dims[all]')"
    )
    assert missing_extra(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None

    @user_errors("lightning-dims sweep")
    def launch() -> int:
        import submitit_is_missing  # noqa: F401  (stands for submitit, below)

        return 0

    def raise_missing(name: str) -> int:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    assert user_errors("lightning-dims sweep")(lambda: raise_missing("submitit.helpers"))() == 2
    assert capsys.readouterr().err == (
        "lightning-dims sweep: error: submitit is not installed; it comes with the 'sweeps' extra: "
        "pip install 'lightning-dims[sweeps]' (or 'lightning-dims[all]')\n"
    )
    with pytest.raises(ModuleNotFoundError):  # a module no extra provides is a bug: its traceback stays
        launch()


def test_the_core_api_imports_with_every_extra_hidden():
    hidden = sorted(set(EXTRAS) - {"matplotlib"})  # torchmetrics imports matplotlib when its metadata says it is installed
    done = subprocess.run(
        [sys.executable, "-c", HIDE_EXTRAS, ",".join(hidden)], capture_output=True, text=True, timeout=300, env=child_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured, represented, imported, missing = done.stdout.strip().splitlines()
    dimension, sharpness = measured.split()
    layer, d_repr = represented.split()
    assert 3 < float(dimension) < 5 and float(sharpness) > 0  # x lies in a 4-dimensional subspace
    assert layer == "1" and 2 < float(d_repr) < 6  # a smooth map of it: d_repr near 4 (TwoNN)
    assert imported == "[]" and missing == "ModuleNotFoundError wandb"


def test_require_names_the_extra_of_a_missing_module(monkeypatch):
    from lightning_dims.errors import require

    assert require("json").dumps([1]) == "[1]"
    monkeypatch.setitem(sys.modules, "foolbox", None)  # an import of foolbox now fails as if it were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'lightning-dims\[attacks\]'"):
        require("foolbox")
    monkeypatch.setitem(sys.modules, "numpyy", None)
    with pytest.raises(ModuleNotFoundError) as raised:
        require("numpyy")
    assert not isinstance(raised.value, MissingExtraError)
