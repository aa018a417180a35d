"""A run from Python, without LightningCLI: ``lightning_dims.training.run.fit`` on a config dict, as a
notebook or ``wandb.agent(sweep_id, function=...)`` starts it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lightning_dims.errors import ConfigError
from lightning_dims.records import read_records
from lightning_dims.runs.identity import RUN_ID_ENV
from lightning_dims.training.run import RunConfig, fit

RUN_MODULE = Path(__file__).resolve().parents[1] / "lightning_dims" / "training" / "run.py"
DATA = {"name": "digits", "classes": [3, 8], "train_size": 40, "val_size": 0, "test_size": 30, "size": 8, "batch_size": 20}
TRAINER = {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}


def test_the_run_module_needs_no_cli():
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(RUN_MODULE.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {"lightning.pytorch.cli", "jsonargparse", "lightning_dims.training.fit_cli", "lightning_dims.cli"} & imported


def test_a_config_dict_trains_tests_and_records_one_run_under_the_agents_id(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")  # what wandb.agent sets before it calls the function
    monkeypatch.setenv("WANDB_RUN_ID", "agent-run-7")
    monkeypatch.delenv(RUN_ID_ENV, raising=False)
    config = {"model": {"arch": "resnet18"}, "data": DATA, "trainer": TRAINER, "run_dir": tmp_path, "wandb": {"mode": "disabled"}}
    record = fit(config)

    assert record is not None and (record.run_id, record.status) == ("agent-run-7", "finished")
    assert [r.run_id for r in read_records(tmp_path)] == ["agent-run-7"]
    assert (record.dataset, record.arch, record.n_train, record.n_test, record.epochs) == ("digits", "resnet18", 40, 30, 1)
    assert record.hparams["lr"] == 1e-3 and record.config["model.weight_decay"] == 1e-4  # the paper preset under the given
    assert record.config["data.size"] == 8 and record.config["trainer.max_epochs"] == 1  # what is given wins
    assert record.label_sharpness > 0 and 1 < record.d_data < 64  # DataPropertiesCallback is a default callback
    assert RUN_ID_ENV not in os.environ  # the next run of an in-process agent resolves its own id
    folder = tmp_path / "agent-run-7"
    assert Path(record.checkpoint) == folder / "checkpoints" / "last.ckpt" and not (folder / "claim.json").exists()

    # the record's test numbers are the final weights' on the test split, computed here independently
    from lightning_dims.data import DimsDataModule
    from lightning_dims.models import ImageClassifier

    checkpoint = torch.load(record.checkpoint, map_location="cpu", weights_only=True)
    model = ImageClassifier(**{k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")})
    model.load_state_dict(checkpoint["state_dict"])
    x, y = DimsDataModule(**DATA).split_tensors("test")
    with torch.no_grad():
        logits = model.eval()(x)
    assert record.test.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-4)
    assert record.test.acc == pytest.approx((logits.argmax(1) == y).float().mean().item())

    # the agent hands the finished run out again: refused, as lightning-dims fit refuses it
    with pytest.raises(ConfigError, match="already finished"):
        fit(RunConfig(model={"arch": "resnet18"}, data=DATA, trainer=TRAINER, options=record_options(tmp_path)))


def record_options(run_dir: Path):
    from lightning_dims.training.run import RunOptions

    return RunOptions(run_dir=str(run_dir), wandb={"mode": "disabled"})


def test_bad_run_configs_are_one_line_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown run config keys \['modle'\]"):
        fit({"modle": {}, "run_dir": tmp_path})
    with pytest.raises(ConfigError, match=r"DimsDataModule has no argument \['sizes'\]"):
        fit({"data": {"sizes": 3}, "run_dir": tmp_path})
    with pytest.raises(ConfigError, match="max_epochs/max_steps is 0"):
        fit({"trainer": {"max_epochs": 0}, "run_dir": tmp_path})
    assert not list(tmp_path.iterdir())  # a refused run leaves nothing
