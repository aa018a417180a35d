"""The names a real offline run writes into W&B: one name per quantity whatever the arch or spec, no
dots, a flat config with one meaning per key (issue 10 point 3), read back from the run's files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from tests.helpers.wandb_files import settled_offline_run

from lightning_dims.commands.fit import main
from lightning_dims.records import read_records
from lightning_dims.tracking.names import CONFIG_KEYS, FGSM_FIELDS


def test_an_offline_run_logs_the_dashboard_names(tmp_path):
    args = [
        "--model.arch", "resnet18", "--data.name", "digits", "--data.classes", "[3,8]",
        "--data.train_size", "60", "--data.val_size", "20", "--data.test_size", "20", "--data.size", "16",
        "--data.batch_size", "20", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--config", "callbacks/fast", "--test_best", "true", "--run_dir", str(tmp_path), "--run_id", "names",
    ]  # fmt: skip
    assert main(args) == 0
    (record,) = read_records(tmp_path)
    run = settled_offline_run(tmp_path / "names", "test_best/loss", "fgsm/loss_penalty")
    config, summary = run["config"], run["summary"]
    logged = set(summary) | {key for row in run["history"] for key in row}

    assert {key: config[key] for key in CONFIG_KEYS} == {
        "dataset": "digits", "task": "digits-3v8", "domain": "natural", "arch": "resnet18", "n_train": 60, "seed": 0,
        "spec": "16px-1ch-max255", "lr": 1e-3, "epochs": 2, "config_hash": record.config_hash,
    }  # fmt: skip
    assert not {"name", "size", "train_size"} & set(config)  # no ambiguous flat keys from Lightning's hparams

    expected = {
        "data/label_sharpness", "data/d_data", "data/log_n_over_d_data",
        "d_repr/penultimate/twonn", "d_repr/layer4/twonn", "d_repr/avgpool/twonn",
        *(f"fgsm/{name}" for name in FGSM_FIELDS), "test/loss", "test/acc", "test_best/loss", "test_best/acc", "val/loss",
    }  # fmt: skip
    assert expected <= logged, expected - logged
    assert not [key for key in logged if "." in key], "dots break W&B filters"

    assert summary["fgsm/loss_penalty"] == pytest.approx(record.fgsm["2.0"].loss_penalty)
    assert summary["d_repr/penultimate/twonn"] == pytest.approx(record.d_repr["layer4"]["twonn"])
    assert summary["data/log_n_over_d_data"] == pytest.approx(math.log(60) / record.d_data)
    assert summary["test/loss"] == pytest.approx(record.test.loss)  # final weights, not the best-val test
    assert summary["test_best/loss"] == pytest.approx(record.test_best.loss)
    assert run["metrics"]["val/loss"] == ["min"]
    assert record.wandb["project"] == "lightning-dims" and record.wandb["sweep_id"] is None

    # organised by default: grouped by task, a job type, the run's facts as tags; the record says where, absolutely
    info = run["run"]
    assert (info.run_group, info.job_type) == ("digits-3v8", "fit")
    assert list(info.tags) == ["digits", "natural", "resnet18", "digits-3v8"]
    assert Path(record.wandb["dir"]).is_absolute() and Path(record.wandb["dir"]).is_relative_to(tmp_path / "names")


ARCH_INDEPENDENT_KEYS = {
    "data/label_sharpness", "data/d_data", "data/log_n_over_d_data", "d_repr/penultimate/twonn", "d_repr/table",
    *(f"fgsm/{name}" for name in FGSM_FIELDS), "fgsm/table", "train/loss", "train/acc", "val/loss", "val/acc",
    "val/auroc", "test/loss", "test/acc", "test/auroc", "epoch", "trainer/global_step",
}  # fmt: skip
"""What one epoch with callbacks/fast.yaml logs on any arch (a table's summary fields count as the table)."""
LAYER_KEY = re.compile(r"^d_repr/(?!penultimate/)[^/]+/twonn$")
"""A non-penultimate layer's d_repr: the one family of keys whose middle part is the arch's layer name."""


@pytest.mark.parametrize(
    ("arch", "size", "layer_keys"),
    [
        pytest.param(  # torchvision names with '.' and ':'; VGG-13 at 32 px trains for 8 s
            "vgg13", 32, {"d_repr/classifier_3/twonn", "d_repr/features_pool/twonn"}, marks=pytest.mark.slow
        ),
        ("test_resnet", 16, {"d_repr/fc_input/twonn", "d_repr/layer4/twonn"}),  # timm: last stage, head input (fc:input)
    ],
)
def test_every_arch_logs_the_same_clean_names(tmp_path, arch, size, layer_keys):
    """Summary and history keys of a real offline run, read from its files: no dot or colon anywhere, layer
    names sanitised, and apart from the per-layer d_repr keys the same names as every other arch."""
    args = [
        "--model.arch", arch, "--data.name", "digits", "--data.classes", "[3,8]", "--data.train_size", "30",
        "--data.val_size", "10", "--data.test_size", "10", "--data.size", str(size), "--data.batch_size", "10",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.enable_checkpointing", "false",
        "--config", "callbacks/fast", "--run_dir", str(tmp_path), "--run_id", arch,
    ]  # fmt: skip
    assert main(args) == 0
    run = settled_offline_run(tmp_path / arch, "fgsm/loss_penalty", "d_repr/penultimate/twonn", "test/loss")
    keys = set(run["summary"]) | {key for row in run["history"] for key in row}
    logged = {re.sub(r"^(\w+/table)/.*", r"\1", key) for key in keys if not key.startswith("_")}

    assert not [key for key in logged if "." in key or ":" in key], "dots and colons break W&B filters"
    assert {key for key in logged if LAYER_KEY.match(key)} == layer_keys
    assert logged - layer_keys == ARCH_INDEPENDENT_KEYS
