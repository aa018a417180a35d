"""The measured numbers the documentation prints, pinned (tolerances well under 5%).

Each test names the table it pins; docs/testing.md lists them too, so a table that moves (or a
number that changes) is updated together with its test. The K_F / d_data table (about 1.5 s a
row) and the callback table (a 3-epoch training run, slow) are recomputed from scratch; the
manifold table in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

from lightning_dims import intrinsic_dimension
from lightning_dims.cli import main

ROOT = Path(__file__).resolve().parents[1]


# ---- "Known-dimension manifolds (MLE, k = 20, N = 4000)" ------------------------------------------


def linear_subspace(rng, n, d, ambient, sample):
    basis = np.linalg.qr(rng.normal(size=(ambient, d)))[0]
    return sample(rng, (n, d)) @ basis.T


def sphere(rng, n, d):
    points = rng.normal(size=(n, d + 1))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


MANIFOLDS = {
    # row: (points from a fresh default_rng(0), MLE, TwoNN) as the table prints them
    "10-d Gaussian in a linear subspace of R^200": (
        lambda rng: linear_subspace(rng, 4000, 10, 200, lambda r, shape: r.normal(size=shape)), 8.86, 9.88),
    "10-d uniform cube in R^200": (
        lambda rng: linear_subspace(rng, 4000, 10, 200, lambda r, shape: r.uniform(size=shape)), 7.87, 9.04),
    "5-sphere in R^6": (lambda rng: sphere(rng, 4000, 5), 4.66, 5.00),
    "swiss roll": (lambda rng: make_swiss_roll(4000, random_state=0)[0], 1.86, 1.99),
}  # fmt: skip


@pytest.mark.parametrize("row", list(MANIFOLDS))
def test_known_dimension_manifold_table(row):
    make, mle, twonn = MANIFOLDS[row]
    points = make(np.random.default_rng(0))
    assert float(intrinsic_dimension(points, "mle", k=20)) == pytest.approx(mle, abs=0.006)
    assert float(intrinsic_dimension(points, "twonn")) == pytest.approx(twonn, abs=0.006)


# ---- the K_F / d_data table of "Datasets" (224 px, 1 channel, max255, MLE k = 20, seed 0) ----------

REAL_DATA = pytest.mark.real_data  # needs $LIGHTNING_DIMS_DATA: skipped without it, a failure under CI=true
PROPERTY_TABLE = [
    # (measure arguments, K_F, d_data) as the table prints them
    pytest.param(["--dataset", "mnist", "--classes", "3,8", "--n", "1000"], 1.15e-4, 11.97, marks=REAL_DATA, id="mnist"),
    pytest.param(["--dataset", "fashionmnist", "--n", "1000"], 1.27e-4, 9.00, marks=REAL_DATA, id="fashionmnist"),
    pytest.param(["--dataset", "pneumoniamnist", "--n", "1000"], 2.95e-4, 11.46, marks=REAL_DATA, id="pneumoniamnist"),
    pytest.param(["--dataset", "breastmnist", "--n", "400"], 1.44e-3, 9.14, marks=REAL_DATA, id="breastmnist"),
    pytest.param(["--dataset", "brain-tissue", "--n", "1000"], 2.77e-4, 7.67, id="brain-tissue"),
    pytest.param(["--dataset", "digits", "--n", "1000"], 1.62e-4, 5.75, id="digits"),
    pytest.param(["--dataset", "digits", "--classes", "3,8", "--n", "300", "--val-size", "0", "--test-size", "0"],
                 1.26e-4, 6.84, id="digits-3-8"),
    pytest.param(["--dataset", "synthetic", "--option", "d=8", "--option", "contrast=1", "--n", "1000"],
                 7.0e-4, 9.42, id="synthetic-contrast-1"),
    pytest.param(["--dataset", "synthetic", "--option", "d=8", "--option", "contrast=0.1", "--n", "1000"],
                 1.31e-3, 8.39, id="synthetic-contrast-0.1"),
]  # fmt: skip


@pytest.mark.parametrize("arguments, k_f, d_data", PROPERTY_TABLE)
def test_dataset_property_table(request, capsys, arguments, k_f, d_data):
    real = request.node.get_closest_marker("real_data") is not None
    root = ["--data-root", str(request.getfixturevalue("shared_data"))] if real else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small pools shrink their test sets, as the table's runs did
        assert main(["measure", *arguments, *root, "--json", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["preprocessing"]["key"] == "224px-1ch-max255" and record["k"] == 20 and record["m"] == min(1000, record["n"])
    assert record["label_sharpness"] == pytest.approx(k_f, rel=0.006)  # the table's rounding, no more
    assert record["d_data"] == pytest.approx(d_data, abs=0.006)


# ---- the callback table of docs/callbacks.md (digits, all ten classes, N = 300, 16 px, 3 epochs, seed 0) ---

CALLBACK_TABLE = {
    # value as docs/callbacks.md records it, relative tolerance
    "label_sharpness": (2.063e-3, 0.002),
    "d_data": (4.873, 0.002),
    "d_repr": (5.561, 0.03),
    "test_acc": (0.810, 0.02),
    "clean_acc": (0.810, 0.02),
    "attacked_acc": (0.680, 0.025),
    "loss_penalty": (0.428, 0.04),
}
PINNED_CPU_ARITHMETIC = {
    "OMP_NUM_THREADS": "1",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "ATEN_CPU_CAPABILITY": "default",
}
"""One thread and one instruction set in MKL, oneDNN and ATen: the callback table's run gives the same
digits on any x86-64 CPU (with each CPU's own fastest kernels it moved by 5% between two machines)."""


def lightning_dims_command() -> list[str]:
    script = Path(sys.executable).parent / "lightning-dims"
    found = str(script) if script.exists() else shutil.which("lightning-dims")
    if found is None:
        pytest.fail("the lightning-dims console script is not installed: pip install -e .")
    return [found]


@pytest.mark.slow
def test_callback_table(tmp_path):
    command = [
        *lightning_dims_command(), "fit", "--config", "callbacks/fast", "--data.name", "digits",
        "--data.train_size", "300", "--data.val_size", "100", "--data.test_size", "200", "--data.size", "16",
        "--model.arch", "resnet18", "--trainer.max_epochs", "3",
        "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu", "--run_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    env = dict(os.environ, LIGHTNING_DIMS_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore", **PINNED_CPU_ARITHMETIC)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (tmp_path / "runs").rglob("*.record.json")
    record = json.loads(path.read_text())
    fgsm = record["fgsm"]["2.0"]
    assert fgsm["n"] == 200 and record["n_test"] == 200 and record["epochs"] == 3
    measured = {
        "label_sharpness": record["label_sharpness"],
        "d_data": record["d_data"],
        "d_repr": record["d_repr"]["layer4"]["twonn"],
        "test_acc": record["test"]["acc"],
        "clean_acc": fgsm["clean_acc"],
        "attacked_acc": fgsm["attacked_acc"],
        "loss_penalty": fgsm["loss_penalty"],
    }
    off = {name: (measured[name], value) for name, (value, rel) in CALLBACK_TABLE.items()
           if measured[name] != pytest.approx(value, rel=rel)}  # fmt: skip
    assert not off, f"measured vs documented: {off}"
