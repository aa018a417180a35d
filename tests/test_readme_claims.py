"""Claims of the docs pages (once the README's) that no other test checks, each against an independent computation.

Which claim each test pins is in docs/testing.md ("Documented claims and their tests").
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping
from PIL import Image
from sklearn.metrics import roc_auc_score

from lightning_dims.callbacks import AdversarialEvalCallback
from lightning_dims.data import DatasetTask, DimsDataModule
from lightning_dims.data.splits import draw_splits
from lightning_dims.properties import label_sharpness
from lightning_dims.records import read_records
from tests.helpers.fit_args import digits_fit_args
from tests.helpers.tiny_lightning import LitClassifier, digits_datamodule, quiet_trainer
from tests.helpers.wandb_files import offline_run
from tests.helpers.processes import child_env

def write_png(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(path)


# ---- splits: "the test (then validation) set shrinks" ---------------------------------------------


def test_a_small_pool_shrinks_the_test_set_before_the_validation_set():
    labels = np.array([0] * 80 + [1] * 80)  # 30 per class left after a 100-image training set
    with pytest.warns(UserWarning, match="test set shrunk from 60 to 40") as caught:
        splits = draw_splits(labels, {"train": 100, "val": 20, "test": 60}, seed=0, n_classes=2)
    assert not any("val set shrunk" in str(w.message) for w in caught)
    assert {name: len(idx) for name, idx in splits.items()} == {"test": 40, "val": 20, "train": 100}
    assert np.bincount(labels[splits["test"]]).tolist() == [20, 20]  # still class-balanced


def test_the_validation_set_shrinks_once_the_test_set_is_gone():
    labels = np.array([0] * 55 + [1] * 60)  # class 0 limits: 5 left after training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = draw_splits(labels, {"train": 100, "val": 20, "test": 60}, seed=0, n_classes=2)
    messages = [str(w.message) for w in caught]
    assert any("val set shrunk from 20 to 10" in m and "task class 0" in m for m in messages), messages
    assert any("test set shrunk from 60 to 0" in m for m in messages), messages
    assert {name: len(idx) for name, idx in splits.items()} == {"test": 0, "val": 10, "train": 100}


# ---- label rules of the radiology sets and MURA patient ids ---------------------------------------

RADIOLOGY_RULES = {
    # name: (raw column, raw values, label per value (None: row dropped), class names)
    "brats": ("tumor_voxels", ["0", "1", "37", "", "0", "2"], [0, 1, 1, None, 0, 1], ["no tumour", "tumour"]),
    "dbc": ("tumor", ["0", "1", "1", "0", "", "1"], [0, 1, 1, 0, None, 1], ["no tumour", "tumour"]),
    "rsna": ("any", ["1", "0", "0", "1", "1", ""], [1, 0, 0, 1, 1, None], ["no haemorrhage", "haemorrhage"]),
    "prostate": ("ucla_score", ["0", "1", "2", "3", "5", ""], [0, 0, 1, 1, 1, None], ["UCLA < 2", "UCLA >= 2"]),
}


@pytest.mark.parametrize("name", list(RADIOLOGY_RULES))
def test_radiology_label_rule_from_the_raw_column(tmp_path, rng, name):
    column, values, expected, class_names = RADIOLOGY_RULES[name]
    rows = [f"path,{column}"]
    for copy in range(3):  # 18 rows, 15 kept
        for index, value in enumerate(values):
            write_png(tmp_path / name / f"slice{copy}_{index}.png", rng)
            rows.append(f"slice{copy}_{index}.png,{value}")
    (tmp_path / name / "manifest.csv").write_text("\n".join(rows) + "\n")
    task = DatasetTask(name, data_root=tmp_path, train_size=4, val_size=0, test_size=4, size=None)
    assert task.pool().labels.tolist() == [label for label in expected if label is not None] * 3
    assert task.class_names == class_names and task.domain == "medical"


def test_mura_patient_ids_come_from_the_paths_and_never_cross_splits(tmp_path, rng):
    rows, patients = ["path"], []
    for patient in range(12):
        for study, outcome in enumerate(("negative", "positive")):
            for image in range(2):
                relative = f"MURA-v1.1/train/XR_HAND/patient{patient + 11180:05d}/study{study + 1}_{outcome}/image{image + 1}.png"
                write_png(tmp_path / "mura" / relative, rng)
                rows.append(relative)
                patients.append(f"patient{patient + 11180:05d}")
    (tmp_path / "mura" / "manifest.csv").write_text("\n".join(rows) + "\n")
    task = DatasetTask("mura", data_root=tmp_path, train_size=8, val_size=4, test_size=8, size=None, seed=3)
    assert task.pool().groups.tolist() == patients
    owners = {split: set(task.pool().groups[task.indices(split)]) for split in ("train", "val", "test")}
    assert not owners["train"] & owners["test"] and not owners["train"] & owners["val"] and not owners["val"] & owners["test"]


# ---- the property cache's fingerprint -------------------------------------------------------------


def test_cache_fingerprint_varies_with_classes_options_m_and_kf_mode():
    base = dict(train_size=100, val_size=20, test_size=40, size=16)

    def key(name="digits", classes=(3, 8), m=1000, kf_mode="exhaustive", **options):
        task = DatasetTask(name, classes=list(classes) if classes else None, options=options or None, **base)
        return task.property_fingerprint(m, 20, "mle", kf_mode)

    reference = key()
    assert key() == reference
    variants = {
        "classes swapped (labels swap)": key(classes=(8, 3)),
        "other classes": key(classes=(3, 5)),
        "m": key(m=500),
        "kf_mode": key(kf_mode="paper"),
    }
    assert all(value != reference for value in variants.values()), variants
    assert key("synthetic", None, d=4) != key("synthetic", None, d=8)  # dataset options
    assert key("synthetic", None, d=4, contrast=0.5) != key("synthetic", None, d=4)


def test_a_paper_mode_request_is_not_served_the_exhaustive_entry():
    task = DatasetTask("digits", classes=[3, 8], train_size=200, val_size=20, test_size=40, size=16)
    exhaustive = task.properties(m=150)
    paper = task.properties(m=150, kf_mode="paper")
    assert (exhaustive.cached, paper.cached) == (False, False)
    x, y = task.images("train"), task.labels("train")
    assert paper.label_sharpness == float(label_sharpness(x, y, m=150, mode="paper", seed=0))
    assert exhaustive.label_sharpness == float(label_sharpness(x, y, m=150, mode="exhaustive", seed=0))
    assert paper.label_sharpness != exhaustive.label_sharpness
    assert task.properties(m=150, kf_mode="paper").cached is True


# ---- fit: --model.head_size 1000 end to end, train/loss_step ------------------------------------


def test_head_size_1000_end_to_end_and_train_loss_step_logged(tmp_path):
    from lightning_dims.commands.fit import main
    from lightning_dims.models import ImageClassifier

    args = digits_fit_args(tmp_path, "head1000", train=60, val=0, test=40, epochs=2, batch=20)
    assert main([*args, "--model.head_size", "1000", "--data_properties", "false"]) == 0
    (record,) = read_records(tmp_path)
    assert record.hparams["head_size"] == 1000 and record.global_step == 6

    checkpoint = torch.load(record.checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["state_dict"]["model.fc.weight"].shape == (1000, 512)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    model = ImageClassifier(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    data = DimsDataModule(name="digits", classes=[3, 8], train_size=60, val_size=0, test_size=40, size=32)
    x, y = data.split_tensors("test")
    with torch.no_grad():
        logits = model.eval()(x).double()
    assert logits.shape == (40, 1000)
    assert record.test.loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-4)  # CE over all 1000 logits
    assert record.test.acc == pytest.approx(float((logits.argmax(1) == y).double().mean()))  # arg-max over 1000
    task_probability = torch.softmax(logits[:, :2], dim=1)[:, 1]  # AUROC: the two task classes' softmax
    assert record.test.auroc == pytest.approx(roc_auc_score(y.numpy(), task_probability.numpy()), rel=1e-6)

    history = offline_run(tmp_path / "head1000")["history"]
    steps = [row["train/loss_step"] for row in history if "train/loss_step" in row]
    assert len(steps) == record.global_step and all(math.isfinite(value) and value > 0 for value in steps)


# ---- FGSM after an early stop ----------------------------------------------------------------------


def test_attack_runs_once_after_an_early_stop_on_the_final_weights():
    torch.manual_seed(0)
    callback = AdversarialEvalCallback(eps=["8/255"])
    calls = []
    evaluate = callback.evaluate
    callback.evaluate = lambda trainer, module: calls.append(trainer.current_epoch) or evaluate(trainer, module)
    stopper = EarlyStopping(monitor="val_loss", min_delta=1e9, patience=1)  # no epoch can improve enough
    datamodule = digits_datamodule(300, 100, 150)
    model = LitClassifier()
    trainer = quiet_trainer(max_epochs=10, callbacks=[stopper, callback])
    trainer.fit(model, datamodule=datamodule)
    assert stopper.stopped_epoch == 1 and trainer.current_epoch == 2 < trainer.max_epochs  # stopped early
    assert calls == [2]  # attacked once, after the stop
    x, y = datamodule.datasets["test"].tensors
    network = model.model.eval()
    x_adv = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(network(x_adv), y, reduction="sum"), x_adv)
    with torch.no_grad():
        attacked = network((x + 8.0 * gradient.sign()).clamp(0.0, 255.0)).double()
        clean = network(x).double()
    fgsm = callback.results["fgsm"]["8.0"]
    assert fgsm["n"] == 150
    assert fgsm["clean_loss"] == pytest.approx(float(F.cross_entropy(clean, y)), rel=1e-5)
    assert fgsm["attacked_loss"] == pytest.approx(float(F.cross_entropy(attacked, y)), rel=1e-5)
    assert fgsm["attacked_acc"] == pytest.approx(float((attacked.argmax(1) == y).double().mean()))


# ---- DDP: only global rank 0 writes the record, the config and W&B ------------------------------------

AUDIT_HOOK = textwrap.dedent(
    '''
    """Test helper loaded as sitecustomize: log every write under $AUDIT_ROOT with the process's rank."""
    import os, sys

    _root, _log = os.environ["AUDIT_ROOT"], os.open(os.environ["AUDIT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    _writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _note(kind, path):
        line = f"{os.environ.get('LOCAL_RANK', '0')}\\t{os.getpid()}\\t{kind}\\t{path}\\n"
        os.write(_log, line.encode())

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in (mode or "") for c in "wax+") if mode else bool((flags or 0) & _writing)
            if writes and isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(_root):
                _note("write", os.fsdecode(path))
        elif event in ("os.mkdir", "os.rename", "os.link", "os.symlink"):
            paths = [os.fsdecode(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            if any(p.startswith(_root) for p in paths):
                _note(event, paths[-1])

    _note("start", " ".join(sys.argv))
    sys.addaudithook(_hook)
    '''
)


@pytest.mark.slow
def test_under_ddp_only_rank_zero_writes_record_config_and_wandb(tmp_path):
    hooks, runs, log = tmp_path / "hooks", tmp_path / "runs", tmp_path / "writes.log"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = child_env(AUDIT_ROOT=str(runs), AUDIT_LOG=str(log), PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), env["PYTHONPATH"]])  # the audit hook's sitecustomize first
    args = digits_fit_args(runs, "ddp-writes", train=80, val=20, test=20, epochs=1, batch=20)
    command = [sys.executable, "-m", "lightning_dims.cli", "fit", *args, "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    folder = runs / "ddp-writes"
    assert [p.name for p in folder.glob("config*.yaml")] == ["config.yaml"]
    assert len(list(folder.glob("wandb/offline-run-*"))) == 1
    assert len(list(runs.rglob("*.record.json"))) == 1
    entries = [line.split("\t") for line in log.read_text().splitlines()]
    ranks = {rank for rank, _, kind, _ in entries if kind == "start"}
    assert {"0", "1"} <= ranks  # the second rank really ran (with the hook)
    writers: dict[str, set[str]] = {}
    for rank, _, kind, path in entries:
        if kind == "start":
            continue
        relative = Path(path).relative_to(folder) if Path(path).is_relative_to(folder) else Path(path)
        what = "config" if relative.name.startswith("config") else relative.parts[0] if relative.parts else str(relative)
        what = "record" if relative.name.endswith(".record.json") or ".record.json." in relative.name else what
        writers.setdefault(what, set()).add(rank)
    assert {"config", "wandb", "record"} <= set(writers), writers
    assert writers["config"] == writers["wandb"] == writers["record"] == {"0"}, writers
