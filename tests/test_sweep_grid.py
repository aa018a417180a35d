"""Offline expansion of W&B grid sweep files."""

import sys

import pytest
import yaml

from lightning_dims.sweep.grid import SweepFileError, expand_grid, load_sweep, run_id_for, shard

SWEEP = {
    "program": "lightning-dims",
    "method": "grid",
    "metric": {"name": "test/loss", "goal": "minimize"},
    "parameters": {
        "model.arch": {"values": ["resnet18", "vgg13"]},
        "data": {"parameters": {"name": {"value": "digits"}, "train_size": {"values": [100, 200, 300]}}},
        "data.classes": {"value": [3, 8]},
    },
    "command": ["${env}", "${program}", "fit", "--trainer.max_epochs=1", "${args}"],
}


def write(tmp_path, config):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_grid_expands_like_a_wandb_agent(tmp_path):
    runs = expand_grid(load_sweep(write(tmp_path, SWEEP)))
    assert len(runs) == 6
    first = runs[0]
    assert first.parameters == {"model.arch": "resnet18", "data.name": "digits", "data.train_size": 100, "data.classes": [3, 8]}
    assert first.argv == [
        "lightning-dims", "fit", "--trainer.max_epochs=1",
        "--model.arch=resnet18", "--data.name=digits", "--data.train_size=100", "--data.classes=[3, 8]",
    ]
    assert len({run.run_id for run in runs}) == 6
    assert runs[0].run_id == run_id_for(dict(reversed(list(first.parameters.items()))))  # order-independent


def test_python_program_gets_the_interpreter(tmp_path):
    config = {"program": "train.py", "parameters": {"lr": {"values": [0.1]}}}
    (run,) = expand_grid(load_sweep(write(tmp_path, config)))
    assert run.argv == [sys.executable, "train.py", "--lr=0.1"]


def test_shards_partition_the_grid(tmp_path):
    runs = expand_grid(load_sweep(write(tmp_path, SWEEP)))
    shards = [shard(runs, f"{i}/4") for i in range(1, 5)]
    assert sorted(r.run_id for part in shards for r in part) == sorted(r.run_id for r in runs)
    with pytest.raises(SweepFileError, match="i/n"):
        shard(runs, "two")
    with pytest.raises(SweepFileError, match="between 1 and n"):
        shard(runs, "5/4")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"method": "bayes", "parameters": {"lr": {"values": [1]}}}, "needs a W&B server"),
        ({"parameters": {"lr": {"min": 0.1, "max": 1.0}}}, "cannot sample distributions"),
        ({"method": "grid"}, "top-level 'parameters'"),
    ],
)
def test_unrunnable_sweeps_are_refused_with_the_fix(tmp_path, config, message):
    with pytest.raises(SweepFileError, match=message):
        expand_grid(load_sweep(write(tmp_path, config)))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SweepFileError, match="nope.yaml"):
        load_sweep(tmp_path / "nope.yaml")
