"""The three callbacks together on the real digits DimsDataModule: W&B, record fields, 2-process DDP."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import WandbLogger

from lightning_dims.callbacks import AdversarialEvalCallback, DataPropertiesCallback, ReprDimCallback
from lightning_dims.data import DimsDataModule
from tests.helpers.reference_properties import brute_force_properties
from tests.helpers.tiny_lightning import LitClassifier, TinyResNetLike, digits_datamodule, quiet_trainer
from tests.helpers.processes import child_env

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def property_cache(tmp_path, monkeypatch):
    """K_F/d_data cache entries go to a temp folder, never to ~/.cache."""
    monkeypatch.setenv("LIGHTNING_DIMS_CACHE", str(tmp_path / "property-cache"))


def small_digits(**options) -> DimsDataModule:
    return DimsDataModule(name="digits", train_size=300, val_size=150, test_size=150, size=16, batch_size=50, **options)


def test_callbacks_fill_wandb_summary_config_and_table(tmp_path):
    torch.manual_seed(0)
    datamodule = small_digits()
    callbacks = [
        DataPropertiesCallback(m=300),
        ReprDimCallback(max_samples=150),
        AdversarialEvalCallback(eps=["2/255"]),
    ]
    logger = WandbLogger(project="lightning-dims-tests", save_dir=str(tmp_path), offline=True)
    trainer = quiet_trainer(max_epochs=2, logger=logger, callbacks=callbacks)
    trainer.fit(LitClassifier(TinyResNetLike(num_classes=datamodule.num_classes)), datamodule=datamodule)
    run = logger.experiment
    summary = {key: run.summary[key] for key in run.summary.keys()}
    config = dict(run.config)
    run.finish()
    for key in ("d_repr/layer4/twonn", "d_repr/avgpool/twonn", "fgsm/loss_penalty", "fgsm/attacked_acc"):
        assert math.isfinite(summary[key]), key
    assert summary["data/label_sharpness"] == pytest.approx(callbacks[0].properties["label_sharpness"])
    assert summary["data/d_data"] == pytest.approx(callbacks[0].properties["d_data"])
    assert summary["fgsm/table"]["_type"] == "table-file" and summary["fgsm/table"]["nrows"] == 1  # one eps
    assert summary["d_repr/table"]["_type"] == "table-file" and summary["d_repr/table"]["nrows"] == 4  # 2 layers x 2 epochs
    assert config["data_properties"]["fingerprint"] == callbacks[0].properties["fingerprint"]

    fields = {}
    for callback in callbacks:
        fields |= callback.results_record_fields()
    assert set(fields["d_repr"]) == {"layer4", "avgpool"}
    assert fields["fgsm"]["2.0"]["n"] == 150 and fields["fgsm"]["2.0"]["loss_penalty"] == summary["fgsm/loss_penalty"]
    assert (fields["label_sharpness"], fields["d_data"]) == pytest.approx(
        brute_force_properties(*datamodule.split_tensors("train")), rel=1e-6
    )  # all 300 training images (m=300)
    assert fields["data_properties"]["n"] == 300 and fields["data_properties"]["preprocessing"]["size"] == 16


def test_data_properties_of_any_datamodule_come_from_its_train_loader():
    callback = DataPropertiesCallback(m=1000)
    datamodule = digits_datamodule(100, 50, 50)
    datamodule.dataset_properties = None  # a datamodule of one's own: no measuring method
    quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[callback]).fit(
        LitClassifier(), datamodule=datamodule
    )
    fields = callback.results_record_fields()
    assert fields["data_properties"]["n"] == 100 and fields["data_properties"]["kf_mode"] == "exhaustive"
    assert (fields["label_sharpness"], fields["d_data"]) == pytest.approx(
        brute_force_properties(*datamodule.datasets["train"].tensors), rel=1e-6
    )  # all 100 training images, read in order from the (shuffling) train loader's dataset


def test_adversarial_bounds_follow_the_intensity_scaling():
    datamodule = small_digits(intensity="max1")
    callback = AdversarialEvalCallback(eps=["2/255"], max_samples=40)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[callback])
    network = TinyResNetLike(num_classes=datamodule.num_classes)
    network.stem[0].weight.data *= 255.0  # the network divides by 255; max1 inputs are already in [0, 1]
    trainer.fit(LitClassifier(network), datamodule=datamodule)
    record = callback.results_record_fields()
    assert record["adversarial"]["bounds"] == [0.0, 1.0]
    assert set(record["fgsm"]) == {"0.0078431372549"} and record["fgsm"]["0.0078431372549"]["n"] == 40


@pytest.mark.slow
def test_two_process_cpu_ddp_matches_single_process_references(tmp_path):
    env = child_env(LIGHTNING_DIMS_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    script = TESTS / "helpers" / "ddp_callbacks_run.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["world_size"] for report in reports] == [2, 2]
    for report in reports:
        del report["fields"]["ReprDimCallback"]["d_repr_details"]["seconds"]  # wall time is per rank
    assert reports[0]["fields"] == reports[1]["fields"]  # every rank records the same numbers
    fields, reference = reports[0]["fields"], reports[0]["reference"]
    d_repr = fields["ReprDimCallback"]["d_repr"]
    for key, value in reference["d_repr"].items():  # gathered activations = one unsharded pass
        layer, estimator = key.split("/")
        assert d_repr[layer][estimator] == pytest.approx(value, rel=1e-6), key
    fgsm = fields["AdversarialEvalCallback"]["fgsm"]
    assert set(fgsm) == set(reference["fgsm"]) == {"2.0", "8.0"}
    for key, expected in reference["fgsm"].items():
        assert fgsm[key]["n"] == reports[0]["n_test"] == 151  # every test image once, none padded
        for name in ("clean_loss", "attacked_loss", "clean_acc", "attacked_acc", "loss_penalty", "acc_penalty"):
            assert fgsm[key][name] == pytest.approx(expected[name], rel=1e-6, abs=1e-9), (key, name)
    properties = fields["DataPropertiesCallback"]
    reference = DimsDataModule(name="digits", train_size=300, val_size=150, test_size=151, size=16)  # as the script's
    assert (properties["label_sharpness"], properties["d_data"]) == pytest.approx(
        brute_force_properties(*reference.split_tensors("train")), rel=1e-6
    )
    assert properties["data_properties"]["n"] == 300


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_config_snippets_instantiate_all_three_callbacks(name):
    import importlib

    import yaml

    config = yaml.safe_load((TESTS.parent / "callbacks" / f"{name}.yaml").read_text())
    callbacks = []
    for entry in config["trainer"]["callbacks"]:
        module, _, cls = entry["class_path"].rpartition(".")
        callbacks.append(getattr(importlib.import_module(module), cls)(**entry.get("init_args", {})))
    kinds = {type(callback) for callback in callbacks}
    assert kinds == {DataPropertiesCallback, ReprDimCallback, AdversarialEvalCallback}
    adversarial = next(c for c in callbacks if isinstance(c, AdversarialEvalCallback))
    assert adversarial.eps == [2 / 255]  # the paper's eps in both
    repr_dim = next(c for c in callbacks if isinstance(c, ReprDimCallback))
    assert repr_dim.estimators == ["twonn"] and repr_dim.layers is None
    if name == "paper":
        assert repr_dim.source == "train" and repr_dim.max_samples >= 1750 and adversarial.max_samples is None
