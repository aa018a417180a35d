"""Offline expansion of W&B grid sweep files."""

import sys

import pytest
import yaml

from lightning_dims.sweep.grid import (
    SweepFileError,
    command_identity,
    expand_grid,
    load_sweep,
    run_id_for,
    shard,
)

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
    # a nested parameters block is one dict-valued parameter, written as the agent writes it (Python repr)
    assert first.parameters == {"model.arch": "resnet18", "data": {"name": "digits", "train_size": 100}, "data.classes": [3, 8]}
    assert first.argv == [
        "lightning-dims", "fit", "--trainer.max_epochs=1",
        "--model.arch=resnet18", "--data={'name': 'digits', 'train_size': 100}", "--data.classes=[3, 8]",
    ]
    assert len({run.run_id for run in runs}) == 6
    assert first.run_id.startswith("resnet18-digits-")  # readable, then the hash
    identity = command_identity(SWEEP)
    assert first.run_id.split("-")[-1] == run_id_for(dict(reversed(list(first.parameters.items()))), identity).split("-")[-1]


def test_run_ids_cover_the_whole_command_and_its_config_files(tmp_path):
    """Same sweep, same ids anywhere; any change of a fixed setting or of a --config file's content: new ids."""
    (tmp_path / "cb.yaml").write_text("trainer:\n  callbacks: []\n")
    sweep = dict(SWEEP, command=[*SWEEP["command"][:-1], "--config=cb.yaml", "${args}"])
    ids = [run.run_id for run in expand_grid(sweep, cwd=tmp_path)]
    assert ids == [run.run_id for run in expand_grid(dict(sweep), cwd=tmp_path)]
    longer = dict(sweep, command=[token.replace("max_epochs=1", "max_epochs=15") for token in sweep["command"]])
    assert not set(ids) & {run.run_id for run in expand_grid(longer, cwd=tmp_path)}
    (tmp_path / "cb.yaml").write_text("trainer:\n  callbacks: [{class_path: x.Y}]\n")
    assert not set(ids) & {run.run_id for run in expand_grid(sweep, cwd=tmp_path)}


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
        ({"method": "gird", "parameters": {"lr": {"values": [1]}}}, r"unknown sweep method 'gird' \(did you mean 'grid'\?\); W&B sweeps take grid, random, bayes"),
    ],
)
def test_unrunnable_sweeps_are_refused_with_the_fix(tmp_path, config, message):
    with pytest.raises(SweepFileError, match=message):
        expand_grid(load_sweep(write(tmp_path, config)))


def test_every_agent_macro_and_unknown_ones_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCH", "/scratch/me")
    config = {"program": "train.py", "parameters": {"lr": {"value": 0.1}, "on": {"value": False}},
              "command": ["${env}", "${interpreter}", "${program}", "--out=${envvar:SCRATCH}/x", "${args_no_hyphens}",
                          "${args_json}", "${args_no_boolean_flags}", "${args_json_file}"]}  # fmt: skip
    (run,) = expand_grid(config)
    assert run.argv == [sys.executable, "train.py", "--out=/scratch/me/x", "lr=0.1", "on=False", '{"lr": 0.1, "on": false}',
                        "--lr=0.1", "${args_json_file}"]  # fmt: skip
    with pytest.raises(SweepFileError, match=r"unknown macro \$\{argz\}"):
        expand_grid(dict(config, command=["${program}", "${argz}"]))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SweepFileError, match="nope.yaml"):
        load_sweep(tmp_path / "nope.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("method: grid\nparameters:\n  lr: {values: [1, 2]\n  arch: x\n")
    with pytest.raises(SweepFileError, match=r"broken.yaml:\d+: invalid YAML"):
        load_sweep(path)


def test_shipped_sweeps_load_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(expand_grid(load_sweep("sweeps/paper"))) == 972
    assert len(expand_grid(load_sweep("sweeps/quick.yaml"))) == 9


def test_a_named_sweep_groups_its_runs_in_wandb_without_changing_their_ids(tmp_path):
    plain = expand_grid(SWEEP, cwd=tmp_path)
    named = expand_grid(dict(SWEEP, name="paper-grid", project="dims"), cwd=tmp_path)
    assert named[0].environment == {"WANDB_PROJECT": "dims", "WANDB_RUN_GROUP": "paper-grid"}
    assert plain[0].environment == {}
    assert [run.run_id for run in named] == [run.run_id for run in plain]
